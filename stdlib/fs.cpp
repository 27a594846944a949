// fs.read(p), fs.write(p, s), fs.list(dir): files in the job's scratch directory and sandbox.paths
// (SPEC 3). The policy is stdlib/fs_path.cpp; the work runs in libuv's thread pool (stdlib/fs_ops.cpp)
// while the coroutine waits (STYLE 2.5), and the result is applied in the after-work callback.
#include "loop/thread_pool.hpp"
#include "scripting/lua_ref.hpp"
#include "stdlib/fs_ops.hpp"
#include "stdlib/fs_path.hpp"
#include "stdlib/stdlib.hpp"

#include <filesystem>
#include <memory>

namespace luaflow::stdlib {

namespace {

// Whatever sandbox.memory says: the daemon keeps a second copy while it hands a file over.
constexpr std::size_t kMaxRead = std::size_t{1} << 30;

enum class Op { read, write, list };

const char* name_of(Op op) {
    switch (op) {
    case Op::read:
        return "fs.read";
    case Op::write:
        return "fs.write";
    case Op::list:
        return "fs.list";
    }
    return "fs";
}

// One call's work: plain values in and out (STYLE 2.4). The pool job holds it until its end, whatever
// became of the task.
struct Job {
    Op op = Op::read;
    FsTarget target;
    std::string data; // write: in; read: out
    std::size_t max_read = 0;
    std::string limit_text;
    std::vector<std::string> names; // list: out
    std::string error;              // set by the worker
    std::size_t memory_limit = 0;
    scripting::Task* task = nullptr; // valid while the wait waits: the task owns it
};

class FsWait final : public scripting::Wait {
  public:
    explicit FsWait(loop::PoolTicket ticket) : ticket_(ticket) {}
    void cancel() override {
        // Work still waiting for a thread is taken back; work already running finishes (a write
        // completes), and its result is dropped.
        ticket_.cancel();
    }

  private:
    loop::PoolTicket ticket_;
};

// In a pool thread: no Lua, no Services, nothing of the loop's.
void work(Job* job) {
    try {
        switch (job->op) {
        case Op::read: {
            auto r = fs_read_file(job->target, job->max_read, job->limit_text);
            if (r)
                job->data = std::move(*r);
            else
                job->error = r.error().message;
            break;
        }
        case Op::write: {
            auto r = fs_write_file(job->target, job->data);
            if (!r) job->error = r.error().message;
            std::string().swap(job->data);
            break;
        }
        case Op::list: {
            auto r = fs_list_dir(job->target);
            if (r)
                job->names = std::move(*r);
            else
                job->error = r.error().message;
            break;
        }
        }
    } catch (const std::exception& e) {
        job->error = job->target.fn + ": " + job->target.shown + ": " + e.what();
    }
}

std::string memory_text(std::size_t limit) {
    return limit ? " (sandbox.memory is " + std::to_string(limit >> 20) + " MiB)" : "";
}

// Builds the result in the state (out of memory is an error there, not a panic), then wakes the task
// with (true, value) or (false, message) for the Lua wrapper.
void resume(Job& job) {
    lua_State* L = job.task->state().L();
    scripting::LuaRef value, message;
    bool ok = job.error.empty();
    if (ok && job.op != Op::write) {
        auto made = scripting::protected_call(L, [&](lua_State* S) {
            if (job.op == Op::read) {
                lua_pushlstring(S, job.data.data(), job.data.size());
            } else {
                lua_createtable(S, static_cast<int>(job.names.size()), 0);
                for (std::size_t i = 0; i < job.names.size(); ++i) {
                    lua_pushlstring(S, job.names[i].data(), job.names[i].size());
                    lua_rawseti(S, -2, static_cast<int>(i + 1));
                }
            }
            value = scripting::LuaRef::pop(S);
        });
        if (!made) {
            ok = false;
            std::string what = job.op == Op::read ? std::to_string(job.data.size()) + " bytes"
                                                  : std::to_string(job.names.size()) + " names";
            job.error = job.target.fn + ": " + job.target.shown + ": not enough Lua memory for its " + what +
                        memory_text(job.memory_limit);
        }
    }
    std::string().swap(job.data);
    std::vector<std::string>().swap(job.names);
    if (!ok) {
        // Without memory even for the message, the wrapper raises a shorter one of its own.
        (void)scripting::protected_call(L, [&](lua_State* S) {
            lua_pushlstring(S, job.error.data(), job.error.size());
            message = scripting::LuaRef::pop(S);
        });
    }
    job.task->wake([&](lua_State* co) {
        lua_pushboolean(co, ok);
        int n = 1;
        if (ok ? value.valid() : message.valid()) {
            (ok ? value : message).push(co);
            n = 2;
        }
        // Dropped before the coroutine runs: it may end the task, and with it the state.
        value.reset();
        message.reset();
        return n;
    });
}

std::string absolute_dir(const std::string& dir) {
    if (dir.empty() || dir.front() == '/') return dir;
    // A relative --state: the daemon never changes its working directory, so this is where it points.
    std::error_code ec;
    auto cwd = std::filesystem::current_path(ec);
    return ec ? dir : (cwd / dir).string();
}

bool fail(lua_State* L, const std::string& message) {
    lua_pushlstring(L, message.data(), message.size());
    return false;
}

// Checks the call and queues its work; on failure leaves the message on L. Every C++ value is gone by
// the time the caller raises or yields.
bool begin(lua_State* L, Op op) {
    std::string fn = name_of(op);
    try {
        scripting::Task* task = scripting::Task::current(L);
        if (!task)
            return fail(L, fn + ": only allowed while an action runs (not at load time or inside a coroutine "
                                "the action created)");
        if (lua_type(L, 1) != LUA_TSTRING)
            return fail(L, fn + ": the path must be a string, got " + luaL_typename(L, 1));
        size_t len = 0;
        const char* path = lua_tolstring(L, 1, &len);
        size_t data_len = 0;
        const char* data = nullptr;
        if (op == Op::write) {
            if (lua_type(L, 2) != LUA_TSTRING && lua_type(L, 2) != LUA_TNUMBER)
                return fail(L, fn + ": the content must be a string, got " + luaL_typename(L, 2));
            data = lua_tolstring(L, 2, &data_len);
        }

        FsRoots roots;
        roots.scratch = absolute_dir(task->label().scratch);
        if (Services* services = services_of(L)) roots.paths = services->sandbox_paths();
        auto target = resolve_fs_path(fn, std::string_view(path, len), roots);
        if (!target) return fail(L, target.error().message);

        auto job = std::make_unique<Job>();
        job->op = op;
        job->target = std::move(*target);
        job->task = task;
        job->memory_limit = task->state().memory_limit();
        if (op == Op::write) job->data.assign(data, data_len);
        if (op == Op::read) {
            // A file larger than the workflow's whole Lua memory can never be handed over.
            if (job->memory_limit && job->memory_limit < kMaxRead) {
                job->max_read = job->memory_limit;
                job->limit_text = "the workflow's Lua memory" + memory_text(job->memory_limit);
            } else {
                job->max_read = kMaxRead;
                job->limit_text = "fs.read's limit of 1 GiB";
            }
        }
        // The top of the pool job's callback (STYLE 2.5 rule 5) is the one place the task is woken; it
        // does not run once the wait is cancelled (a timeout, cancel, a reload).
        std::shared_ptr<Job> shared = std::move(job);
        auto queued = loop::run_in_pool(
            task->loop(), [shared] { work(shared.get()); }, [shared] { resume(*shared); });
        if (!queued)
            return fail(L, fn + ": " + shared->target.shown +
                               ": cannot start the work: " + queued.error().message);
        task->await(std::make_unique<FsWait>(*queued));
        return true;
    } catch (const std::exception& e) {
        return fail(L, fn + ": " + e.what());
    }
}

int l_fs_read(lua_State* L) {
    if (!begin(L, Op::read)) return lua_error(L);
    return lua_yield(L, 0);
}

int l_fs_write(lua_State* L) {
    if (!begin(L, Op::write)) return lua_error(L);
    return lua_yield(L, 0);
}

int l_fs_list(lua_State* L) {
    if (!begin(L, Op::list)) return lua_error(L);
    return lua_yield(L, 0);
}

// A C function cannot raise after a yield (Lua 5.1 has no continuations), so the woken call returns
// (ok, value or message) and this wrapper raises. Level 0: the message is the whole error, as from the
// other library functions.
const char kWrapper[] = R"(
local raw_read, raw_write, raw_list, error = ...
local function check(name, ok, value)
  if ok then return value end
  error(value or (name .. ": not enough memory"), 0)
end
return {
  read = function(path) return check("fs.read", raw_read(path)) end,
  write = function(path, data) check("fs.write", raw_write(path, data)) end,
  list = function(dir) return check("fs.list", raw_list(dir)) end,
}
)";

} // namespace

void install_fs(lua_State* L, int env) {
    if (env < 0 && env > LUA_REGISTRYINDEX) env = lua_gettop(L) + env + 1;
    scripting::load_builtin_chunk(L, {kWrapper, sizeof kWrapper - 1}, "=fs");
    lua_pushvalue(L, env);
    lua_setfenv(L, -2);
    lua_pushcfunction(L, l_fs_read);
    lua_pushcfunction(L, l_fs_write);
    lua_pushcfunction(L, l_fs_list);
    lua_getglobal(L, "error");
    lua_call(L, 4, 1);
    lua_setfield(L, env, "fs");
}

} // namespace luaflow::stdlib
