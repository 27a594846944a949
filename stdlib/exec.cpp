// exec(argv [, { stdin, env, cwd, timeout }]) -> { code, stdout, stderr } (SPEC 3): runs a program in
// its own process group and yields until it has exited and both pipes are at EOF (STYLE 2.5, 2.10).
//
// - A non-zero exit is a result. A program ended by a signal returns { code = nil, signal = "SIGKILL" }.
// - A program that cannot start, a timeout, or output past the cap raises "exec ARGV0: ...". At the
//   timeout or the cap the call raises at once, and the group gets SIGTERM, then SIGKILL 10 s later.
// - The environment is env.pass (Services::exec_environment) plus opts.env, and LUAFLOW_JOB, a value of
//   the call's own; argv[1] without a slash is looked up in that environment's PATH (execvp;
//   /bin:/usr/bin when it has none).
// - When the program exits, what it left running gets SIGTERM (SIGKILL 10 s later): the rest of its
//   group, and any process that still carries its LUAFLOW_JOB (one that left the group or session).
// - cwd defaults to the job's scratch directory, created when missing; a relative cwd is taken from it.
//   Both are checked or created on libuv's thread pool, not on the loop.
// - stdout and stderr are captured whole, up to kMaxOutput each or the workflow's sandbox.memory when
//   smaller; past it the call raises naming the stream.
// - Cancelling the action terminates the group (SIGTERM, SIGKILL 10 s later); the child lives on in the
//   loop until it has exited, and its late exit finds nothing.
//
// Errors raise from a small Lua wrapper with error(msg, 2): a C function cannot raise after its resume,
// and this way argument errors name the caller's line as well.
#include "common/duration.hpp"
#include "loop/child_process.hpp"
#include "loop/thread_pool.hpp"
#include "loop/uv_handle.hpp"
#include "stdlib/stdlib.hpp"

#include <cstring>
#include <filesystem>
#include <memory>

namespace luaflow::stdlib {

namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxOutput = 64u << 20; // per stream

struct Request {
    std::vector<std::string> argv;
    std::map<std::string, std::string> env;
    std::string cwd;
    bool create_cwd = false; // the default cwd: the job's scratch directory, made when missing
    std::optional<std::string> stdin_data;
    std::optional<Millis> timeout;
    std::size_t cap = kMaxOutput;
};

// What the call ends with: the message it raises, or the program's result.
struct Outcome {
    std::string name; // "exec ARGV0", for messages
    std::string error;
    loop::ChildExit exit;
    std::string out, err;
};

std::string format_bytes(std::size_t n) {
    if (n % (1u << 20) == 0) return std::to_string(n >> 20) + " MiB";
    if (n % (1u << 10) == 0) return std::to_string(n >> 10) + " KiB";
    return std::to_string(n) + " bytes";
}

std::string signal_name(int sig) {
    const char* abbrev = sigabbrev_np(sig);
    return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

// Builds the call's result in the state's main thread under protection (a large output may not fit in
// sandbox.memory; outside protection that would abort the daemon), then hands it to the coroutine.
int push_outcome(scripting::LuaState& state, lua_State* co, const Outcome& o) {
    bool ok = o.error.empty();
    scripting::LuaRef value;
    auto built = scripting::protected_call(state.L(), [&](lua_State* L) {
        if (!ok) {
            lua_pushlstring(L, o.error.data(), o.error.size());
        } else {
            lua_createtable(L, 0, 3);
            if (o.exit.signal == 0) {
                lua_pushinteger(L, static_cast<lua_Integer>(o.exit.code));
                lua_setfield(L, -2, "code");
            } else {
                lua_pushstring(L, signal_name(o.exit.signal).c_str());
                lua_setfield(L, -2, "signal");
            }
            lua_pushlstring(L, o.out.data(), o.out.size());
            lua_setfield(L, -2, "stdout");
            lua_pushlstring(L, o.err.data(), o.err.size());
            lua_setfield(L, -2, "stderr");
        }
        value = scripting::LuaRef::pop(L);
    });
    if (!built) {
        ok = false;
        std::string msg = o.name + ": its output (" + std::to_string(o.out.size()) + " bytes on stdout, " +
                          std::to_string(o.err.size()) +
                          " on stderr) does not fit in the workflow's Lua memory (sandbox.memory)";
        // Even this may not fit; the wrapper then raises a fixed message.
        (void)scripting::protected_call(state.L(), [&](lua_State* L) {
            lua_pushlstring(L, msg.data(), msg.size());
            value = scripting::LuaRef::pop(L);
        });
    }
    lua_pushboolean(co, ok);
    value.push(co);
    return 2;
}

class ExecWait;

// EXECUTION/ACTION/ATTEMPT/exec-N: N counts the daemon's exec() calls, so that the processes of a call
// whose leftovers are still being ended are not taken for the next call's.
std::string job_marker(const scripting::TaskLabel& label) {
    static std::uint64_t calls = 0; // the loop's thread only
    return label.execution + "/" + label.action + "/" + std::to_string(label.attempt) + "/exec-" +
           std::to_string(++calls);
}

class ExecWait final : public scripting::Wait {
  public:
    ExecWait(scripting::Task& task, Request request)
        : task_(&task), request_(std::move(request)), alive_(std::make_shared<bool>(true)) {
        name_ = "exec " + request_.argv[0];
    }

    // Queues the directory step; returns a message when even that cannot start. The check (and, for the
    // default, the creation) runs on the thread pool with plain values in and a message out (STYLE 2.4);
    // it cannot be taken back, so it holds only a weak token of the wait.
    std::string start() {
        auto error = std::make_shared<std::string>();
        auto queued = loop::run_in_pool(
            task_->loop(),
            [error, path = request_.cwd, create = request_.create_cwd] { *error = check_dir(path, create); },
            [error, alive = std::weak_ptr<bool>(alive_), this] {
                if (alive.expired()) return; // cancelled meanwhile
                on_dir_ready(std::move(*error));
            });
        if (!queued) return name_ + ": " + queued.error().message;
        return {};
    }

    // The task is gone or stops waiting: the process group is terminated, the child lives on in the loop.
    void cancel() override {
        alive_.reset();
        timer_.reset();
        child_.reset();
    }

  private:
    static std::string check_dir(const std::string& path, bool create) {
        if (path.empty()) return {};
        std::error_code ec;
        if (create) {
            fs::create_directories(path, ec);
            if (ec) return "cannot create the scratch directory " + path + ": " + ec.message();
        }
        fs::file_status st = fs::status(path, ec);
        if (st.type() == fs::file_type::not_found) return "cwd " + path + ": no such directory";
        if (ec) return "cwd " + path + ": " + ec.message();
        if (!fs::is_directory(st)) return "cwd " + path + ": not a directory";
        return {};
    }

    void on_dir_ready(std::string error) {
        if (!error.empty()) return fail(std::move(error));
        loop::ChildOptions options;
        options.argv = request_.argv;
        options.env = std::move(request_.env);
        options.cwd = request_.cwd;
        options.stdin_data = std::move(request_.stdin_data);
        // Marked as a subprocess action's job is, by a value of its own: when the program exits, what it
        // left running (a detached grandchild too) is ended, and so is what a crash left (leftovers.cpp
        // reads the execution id before the first '/').
        options.marker = "LUAFLOW_JOB";
        options.env[options.marker] = job_marker(task_->label());
        loop::ChildCallbacks callbacks;
        // The wait owns the child, and dropping the child stops its callbacks: `this` is there for them.
        callbacks.on_chunk = [this](loop::ChildStream stream, std::string_view chunk) {
            on_chunk(stream, chunk);
        };
        callbacks.on_exit = [this](const loop::ChildExit& exit) { on_exit(exit); };
        auto child = loop::ChildProcess::spawn(task_->loop(), std::move(options), std::move(callbacks));
        if (!child) return fail("cannot start: " + child.error().message);
        child_ = std::move(*child);
        if (request_.timeout) {
            // The call raises at the timeout; dropping the child then sends SIGTERM to its group, and
            // SIGKILL 10 s later to what ignores it.
            timer_ = std::make_unique<loop::Timer>(task_->loop());
            timer_->start(static_cast<std::uint64_t>(*request_.timeout),
                          [this] { fail("timed out after " + format_duration(*request_.timeout)); });
        }
    }

    void on_chunk(loop::ChildStream stream, std::string_view chunk) {
        std::string& into = stream == loop::ChildStream::out ? out_ : err_;
        if (into.size() + chunk.size() > request_.cap) {
            // Raises at once; dropping the child terminates its group.
            return fail(std::string(loop::to_string(stream)) + " exceeded " + format_bytes(request_.cap) +
                        "; the program was killed");
        }
        into.append(chunk);
    }

    void on_exit(const loop::ChildExit& exit) {
        Outcome o;
        o.name = name_;
        o.exit = exit;
        o.out = std::move(out_);
        o.err = std::move(err_);
        finish(std::move(o));
    }

    void fail(std::string message) {
        Outcome o;
        o.name = name_;
        o.error = name_ + ": " + message;
        finish(std::move(o));
    }

    // Called from the top of a libuv callback (the pool's, the child's or the timer's). wake() destroys
    // this wait, and with it the child (abandoned: its group is terminated) and the timer, so nothing here
    // is used after it: the push owns what it hands over.
    void finish(Outcome o) {
        scripting::Task* task = task_;
        scripting::LuaState* state = &task->state();
        auto outcome = std::make_shared<Outcome>(std::move(o));
        std::function<int(lua_State*)> push = [state, outcome](lua_State* co) {
            return push_outcome(*state, co, *outcome);
        };
        task->wake(push);
    }

    scripting::Task* task_;
    Request request_;
    std::string name_;
    std::shared_ptr<bool> alive_;
    std::unique_ptr<loop::ChildProcess> child_;
    std::unique_ptr<loop::Timer> timer_;
    std::string out_, err_;
};

// A string argument without NUL bytes (the kernel takes C strings); numbers are converted.
bool c_string_at(lua_State* L, int idx, std::string& out) {
    int t = lua_type(L, idx);
    if (t != LUA_TSTRING && t != LUA_TNUMBER) return false;
    size_t len = 0;
    const char* s = lua_tolstring(L, idx, &len);
    out.assign(s, len);
    return true;
}

bool has_nul(const std::string& s) {
    return s.find('\0') != std::string::npos;
}

// Reads the arguments into r; returns the message to raise, or "" when they are good.
std::string parse_request(lua_State* L, const std::string& scratch, Request& r) {
    if (lua_type(L, 1) != LUA_TTABLE)
        return std::string("exec: argv must be a list of strings, got ") + luaL_typename(L, 1);
    int n = static_cast<int>(lua_objlen(L, 1));
    if (n == 0) return "exec: argv must be a non-empty list of strings";
    for (int i = 1; i <= n; ++i) {
        lua_rawgeti(L, 1, i);
        std::string arg;
        bool ok = c_string_at(L, -1, arg);
        std::string type = luaL_typename(L, -1);
        lua_pop(L, 1);
        if (!ok) return "exec: argv[" + std::to_string(i) + "] must be a string, got " + type;
        if (has_nul(arg)) return "exec: argv[" + std::to_string(i) + "] contains a NUL byte";
        r.argv.push_back(std::move(arg));
    }
    if (r.argv[0].empty()) return "exec: argv[1] must name a program, got an empty string";

    r.cwd = scratch; // none known (a test's bare task): the daemon's own
    r.create_cwd = true;
    if (lua_isnoneornil(L, 2)) return {};
    if (lua_type(L, 2) != LUA_TTABLE)
        return std::string("exec: options must be a table, got ") + luaL_typename(L, 2);
    lua_pushnil(L);
    while (lua_next(L, 2) != 0) {
        // Only string keys are looked at by name: lua_tostring on a number key would confuse lua_next.
        std::string key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
        lua_pop(L, 1);
        if (key != "stdin" && key != "env" && key != "cwd" && key != "timeout") {
            std::string shown =
                key.empty() ? std::string("a ") + luaL_typename(L, -1) + " key" : "'" + key + "'";
            lua_pop(L, 1);
            return "exec: unknown option " + shown + " (expected stdin, env, cwd, timeout)";
        }
    }

    lua_getfield(L, 2, "stdin");
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            return std::string("exec: stdin must be a string, got ") + luaL_typename(L, -1);
        size_t len = 0;
        const char* s = lua_tolstring(L, -1, &len);
        r.stdin_data.emplace(s, len);
    }
    lua_pop(L, 1);

    lua_getfield(L, 2, "env");
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TTABLE)
            return std::string("exec: env must be a table of strings, got ") + luaL_typename(L, -1);
        int env = lua_gettop(L);
        lua_pushnil(L);
        while (lua_next(L, env) != 0) {
            if (lua_type(L, -2) != LUA_TSTRING) {
                std::string type = luaL_typename(L, -2);
                lua_pop(L, 3);
                return "exec: env keys must be variable names, got a " + type;
            }
            size_t name_len = 0;
            const char* name_chars = lua_tolstring(L, -2, &name_len);
            std::string name(name_chars, name_len);
            std::string value;
            bool ok = c_string_at(L, -1, value);
            std::string type = luaL_typename(L, -1);
            lua_pop(L, 1);
            if (name.empty() || name.find('=') != std::string::npos || has_nul(name)) {
                lua_pop(L, 2);
                return "exec: env: '" + name + "' is not a variable name";
            }
            if (!ok || has_nul(value)) {
                lua_pop(L, 2);
                return "exec: env." + name + " must be a string" +
                       (ok ? " without NUL bytes" : ", got " + type);
            }
            r.env[name] = std::move(value);
        }
    }
    lua_pop(L, 1);

    lua_getfield(L, 2, "cwd");
    if (!lua_isnil(L, -1)) {
        std::string cwd;
        bool is_string = lua_type(L, -1) == LUA_TSTRING && c_string_at(L, -1, cwd);
        std::string type = luaL_typename(L, -1);
        lua_pop(L, 1);
        if (!is_string) return "exec: cwd must be a string, got " + type;
        if (cwd.empty() || has_nul(cwd)) return "exec: cwd must be a directory path";
        // Relative to the scratch directory, as fs.* paths are; never to the daemon's own directory.
        r.cwd = cwd[0] == '/' || scratch.empty() ? cwd : scratch + "/" + cwd;
        r.create_cwd = false;
    } else {
        lua_pop(L, 1);
    }

    lua_getfield(L, 2, "timeout");
    if (!lua_isnil(L, -1)) {
        std::optional<Millis> ms;
        if (lua_type(L, -1) == LUA_TNUMBER)
            ms = duration_from_seconds(lua_tonumber(L, -1));
        else if (lua_type(L, -1) == LUA_TSTRING)
            ms = parse_duration(lua_tostring(L, -1));
        std::string shown = lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER
                                ? lua_tostring(L, -1)
                                : luaL_typename(L, -1);
        lua_pop(L, 1);
        if (!ms || *ms <= 0)
            return "exec: timeout must be a positive number of seconds or a duration like \"30s\", got " +
                   shown;
        r.timeout = ms;
    } else {
        lua_pop(L, 1);
    }
    return {};
}

// Returns false and the message: the wrapper raises it at the caller's line.
int refuse(lua_State* L, const std::string& message) {
    lua_pushboolean(L, 0);
    lua_pushlstring(L, message.data(), message.size());
    return 2;
}

int l_exec(lua_State* L) {
    scripting::Task* task = scripting::Task::current(L);
    if (!task)
        return refuse(L,
                      "exec: only allowed while an action runs (not at load time or inside a coroutine the "
                      "action created)");
    Request r;
    if (std::string bad = parse_request(L, task->label().scratch, r); !bad.empty()) return refuse(L, bad);
    Services* services = services_of(L);
    std::map<std::string, std::string> env;
    if (services) env = services->exec_environment();
    for (auto& [k, v] : r.env)
        env[k] = std::move(v);
    r.env = std::move(env);
    if (std::size_t limit = task->state().memory_limit(); limit != 0 && limit < r.cap) r.cap = limit;

    auto wait = std::make_unique<ExecWait>(*task, std::move(r));
    if (std::string err = wait->start(); !err.empty()) return refuse(L, err);
    task->await(std::move(wait));
    return lua_yield(L, 0);
}

// `raw` returns true and the result, or false and the message.
constexpr char kWrapper[] = "local raw, raise = ...\n"
                            "return function(argv, opts)\n"
                            "  local ok, r = raw(argv, opts)\n"
                            "  if ok then return r end\n"
                            "  raise(r or 'exec: out of memory', 2)\n"
                            "end\n";

} // namespace

void install_exec(lua_State* L, int env) {
    if (env < 0 && env > LUA_REGISTRYINDEX) env = lua_gettop(L) + env + 1;
    scripting::load_builtin_chunk(L, {kWrapper, sizeof(kWrapper) - 1}, "=exec");
    lua_pushcfunction(L, l_exec);
    lua_getfield(L, env, "error");
    lua_call(L, 2, 1);
    lua_setfield(L, env, "exec");
}

} // namespace luaflow::stdlib
