// Reads luaflowd.lua (SPEC 2): a Lua file run in a bare sandbox that sets globals or returns a table.
// Every key is checked; an unknown one is an error naming FILE:LINE (Knot's lua_table_checkindices).
#include "common/event.hpp"
#include "common/size.hpp"
#include "daemon/config/config.hpp"
#include "scripting/convert.hpp"
#include "scripting/lua_state.hpp"
#include "scripting/source_lines.hpp"

#include <uv.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace luaflow::config {

using nlohmann::json;

namespace {

const nlohmann::json kNoFields = nlohmann::json::object();

const char kLinesKey = 0; // registry: { [global name] = line where the file set it }

// __newindex of the config's globals: remembers the line of each assignment.
int l_capture(lua_State* L) {
    if (lua_type(L, 2) == LUA_TSTRING) scripting::remember_line(L, &kLinesKey, 2, scripting::caller_line(L));
    lua_rawset(L, 1);
    return 0;
}

class Checker {
  public:
    Checker(std::string file, std::string source, std::map<std::string, int> lines, std::string base)
        : file_(std::move(file)), source_(std::move(source)), lines_(std::move(lines)),
          base_(std::move(base)) {}

    Result<Config> check(const json& doc) {
        Config c;
        c.file = file_;
        static const std::set<std::string> known = {
            "workflows", "state",     "socket", "http",    "retention", "shutdown_grace", "queues",
            "hosts",     "notifiers", "notify", "sandbox", "env",       "durability"};
        for (auto it = doc.begin(); it != doc.end(); ++it)
            if (!known.count(it.key())) return fail(it.key(), "unknown key '" + it.key() + "'");
        if (auto r = str(doc, "workflows", c.workflows); !r) return r.error();
        if (auto r = str(doc, "state", c.state); !r) return r.error();
        c.workflows = resolve_path(c.workflows, base_);
        c.state = resolve_path(c.state, base_);
        if (doc.contains("socket")) {
            const json& s = doc["socket"];
            if (auto r = object_with(s, "socket", {"path", "mode", "group"}); !r) return r.error();
            if (auto r = str(s, "path", c.socket.path, "socket"); !r) return r.error();
            if (auto r = str(s, "group", c.socket.group, "socket"); !r) return r.error();
            c.socket.path = resolve_path(c.socket.path, base_);
            if (s.contains("mode")) {
                std::string mode;
                if (auto r = str(s, "mode", mode, "socket"); !r) return r.error();
                char* end = nullptr;
                unsigned long m = std::strtoul(mode.c_str(), &end, 8);
                if (mode.empty() || *end || m > 07777)
                    return fail("mode", "socket.mode: '" + mode + "' is not an octal mode like \"0660\"");
                c.socket.mode = static_cast<unsigned>(m);
            }
        }
        if (doc.contains("http")) {
            const json& h = doc["http"];
            if (auto r = object_with(h, "http",
                                     {"listen", "token_file", "max_body", "timeout", "max_connections"});
                !r)
                return r.error();
            if (auto r = str(h, "listen", c.http.listen, "http"); !r) return r.error();
            if (auto r = str(h, "token_file", c.http.token_file, "http"); !r) return r.error();
            c.http.token_file = resolve_path(c.http.token_file, base_);
            if (h.contains("max_body")) {
                auto bytes = size_value(h["max_body"]);
                if (!bytes || *bytes < 1024)
                    return fail("max_body", "http.max_body: " + h["max_body"].dump() +
                                                " is not a size of at least 1K (like \"1M\")");
                c.http.max_body = *bytes;
            }
            if (h.contains("timeout")) {
                auto d = duration(h["timeout"]);
                if (!d || *d < 100)
                    return fail("timeout", "http.timeout: " + h["timeout"].dump() +
                                               " is not a duration of at least 100ms (like \"10s\")");
                c.http.timeout = *d;
            }
            if (auto r = integer(h, "max_connections", c.http.max_connections, "http", 1); !r)
                return r.error();
        }
        if (doc.contains("retention")) {
            const json& r = doc["retention"];
            if (auto e = object_with(r, "retention", {"days", "keep_per_workflow"}); !e) return e.error();
            if (auto e = integer(r, "days", c.retention.days, "retention", 0); !e) return e.error();
            if (auto e = integer(r, "keep_per_workflow", c.retention.keep_per_workflow, "retention", 0); !e)
                return e.error();
        }
        if (doc.contains("shutdown_grace")) {
            auto d = duration(doc["shutdown_grace"]);
            if (!d)
                return fail("shutdown_grace", "shutdown_grace: " + doc["shutdown_grace"].dump() +
                                                  " is not a duration (use 500ms, 30s, 5m, 2h or seconds)");
            c.shutdown_grace = *d;
        }
        if (doc.contains("durability")) {
            const json& d = doc["durability"];
            if (d != "crash" && d != "power")
                return fail("durability",
                            "durability: expected \"crash\" (commits survive kill -9) or \"power\" "
                            "(they survive power loss too), got " +
                                d.dump());
            c.durability = d == "power" ? Durability::power : Durability::crash;
        }
        if (doc.contains("queues")) {
            const json& q = doc["queues"];
            if (!is_table(q)) return fail("queues", "queues: expected { name = { concurrency = N } }");
            for (auto it = q.begin(); it != q.end(); ++it) {
                std::string ctx = "queues." + it.key();
                if (auto r = object_with(it.value(), ctx, {"concurrency"}); !r) return r.error();
                int n = 0;
                if (auto r = integer(it.value(), "concurrency", n, ctx, 1); !r) return r.error();
                c.queues[it.key()].concurrency = n;
            }
        }
        if (doc.contains("hosts")) {
            if (auto r = hosts(doc["hosts"], c.hosts); !r) return r.error();
        }
        if (doc.contains("notifiers")) {
            if (auto r = notifiers(doc["notifiers"], c.notifiers); !r) return r.error();
        }
        if (doc.contains("notify")) {
            const json& n = doc["notify"];
            if (!is_table(n)) return fail("notify", "notify: expected { event = { notifier, ... } }");
            for (auto it = n.begin(); it != n.end(); ++it) {
                if (!parse_event(it.key()))
                    return fail(it.key(), "notify: unknown event '" + it.key() + "' (" + event_names() + ")");
                if (!string_list(it.value()))
                    return fail(it.key(), "notify." + it.key() + ": expected a list of notifier names");
                for (const auto& name : it.value())
                    if (!c.notifiers.count(name.get<std::string>()))
                        return fail(it.key(), "notify." + it.key() + ": unknown notifier '" +
                                                  name.get<std::string>() + "'");
            }
            c.notify = n;
        }
        if (doc.contains("sandbox")) {
            const json& s = doc["sandbox"];
            if (auto r = object_with(s, "sandbox", {"memory", "paths", "exec"}); !r) return r.error();
            if (s.contains("exec")) {
                if (!s["exec"].is_boolean())
                    return fail("exec", "sandbox.exec: " + s["exec"].dump() + " is not true or false");
                c.sandbox.exec = s["exec"].get<bool>();
            }
            if (s.contains("memory")) {
                auto bytes = size_value(s["memory"]);
                if (!bytes || *bytes < (1u << 20))
                    return fail("memory", "sandbox.memory: " + s["memory"].dump() +
                                              " is not a size of at least 1M (like \"64M\")");
                c.sandbox.memory = *bytes;
            }
            if (s.contains("paths")) {
                if (!string_list(s["paths"]))
                    return fail("paths", "sandbox.paths: expected a list of directories");
                for (const auto& p : s["paths"]) {
                    std::string dir = p.get<std::string>();
                    // fs.* compares absolute paths part by part: a relative one is made absolute here,
                    // once. Existence is not required: a mount may come later.
                    if (dir.empty()) return fail("paths", "sandbox.paths: '' is not a directory");
                    if (("/" + dir + "/").find("/../") != std::string::npos)
                        return fail("paths", "sandbox.paths: '" + dir + "' may not contain '..'");
                    c.sandbox.paths.push_back(resolve_path(dir, base_));
                }
            }
        }
        if (doc.contains("env")) {
            const json& e = doc["env"];
            if (auto r = object_with(e, "env", {"pass", "secrets"}); !r) return r.error();
            if (e.contains("pass")) {
                if (!string_list(e["pass"]))
                    return fail("pass", "env.pass: expected a list of variable names");
                for (const auto& p : e["pass"])
                    c.env.pass.push_back(p.get<std::string>());
            }
            if (e.contains("secrets")) {
                if (!is_table(e["secrets"]))
                    return fail("secrets", "env.secrets: expected { NAME = \"/path/to/file\" }");
                for (auto it = e["secrets"].begin(); it != e["secrets"].end(); ++it) {
                    if (!it.value().is_string())
                        return fail(it.key(), "env.secrets." + it.key() + ": expected a file path");
                    c.env.secrets[it.key()] = resolve_path(it.value().get<std::string>(), base_);
                }
            }
        }
        return c;
    }

  private:
    Error fail(const std::string& key, const std::string& message) {
        int line = 0;
        if (auto it = lines_.find(key); it != lines_.end()) line = it->second;
        if (!line) line = scripting::find_key_line(source_, key);
        return make_error(ErrorCode::invalid, file_ + ":" + std::to_string(line) + ": " + message);
    }

    static bool is_table(const json& j) { return j.is_object() || (j.is_array() && j.empty()); }
    static bool string_list(const json& j) {
        if (!j.is_array()) return false;
        for (const auto& s : j)
            if (!s.is_string()) return false;
        return true;
    }

    Result<void> object_with(const json& j, const std::string& ctx, std::set<std::string> keys) {
        std::string top = ctx.substr(0, ctx.find('.'));
        if (!is_table(j)) return fail(top, ctx + ": expected a table");
        for (auto it = j.begin(); it != j.end(); ++it)
            if (!keys.count(it.key())) return fail(it.key(), "unknown key '" + ctx + "." + it.key() + "'");
        return {};
    }

    // A size: a number of bytes, or a string such as "64M".
    static std::optional<std::uint64_t> size_value(const json& v) {
        if (v.is_number_unsigned() || (v.is_number_integer() && v.get<long long>() >= 0))
            return v.get<std::uint64_t>();
        if (v.is_string()) return parse_size(v.get<std::string>());
        return std::nullopt;
    }

    Result<void> str(const json& j, const char* key, std::string& out, const std::string& ctx = "") {
        if (!j.contains(key)) return {};
        std::string name = ctx.empty() ? key : ctx + "." + key;
        if (!j[key].is_string()) return fail(key, name + ": expected a string, got " + j[key].dump());
        out = j[key].get<std::string>();
        return {};
    }

    Result<void> integer(const json& j, const char* key, int& out, const std::string& ctx, int min) {
        if (!j.contains(key)) return {};
        std::string name = ctx + "." + key;
        if (!j[key].is_number_integer() || j[key].get<long long>() < min ||
            j[key].get<long long>() > 1'000'000'000)
            return fail(key,
                        name + ": expected an integer >= " + std::to_string(min) + ", got " + j[key].dump());
        out = j[key].get<int>();
        return {};
    }

    static std::optional<Millis> duration(const json& j) {
        if (j.is_number()) return duration_from_seconds(j.get<double>());
        if (j.is_string()) return parse_duration(j.get<std::string>());
        return std::nullopt;
    }

    Result<void> hosts(const json& h, std::map<std::string, HostConfig>& out) {
        if (!is_table(h)) return fail("hosts", "hosts: expected { name = { ... } }");
        for (auto it = h.begin(); it != h.end(); ++it) {
            std::string ctx = "hosts." + it.key();
            if (auto r = object_with(
                    it.value(), ctx,
                    {"cpus", "gpus", "memory", "ssh", "port", "identity", "ssh_options", "slurm"});
                !r)
                return r;
            const json& v = it.value();
            HostConfig host;
            if (v.contains("cpus")) {
                if (!v["cpus"].is_number() || v["cpus"].get<double>() < 0)
                    return fail("cpus", ctx + ".cpus: expected a number >= 0");
                host.cpus = v["cpus"].get<double>();
            }
            if (v.contains("gpus")) {
                if (v["gpus"] == "auto")
                    host.gpus_auto = true;
                else if (string_list(v["gpus"]))
                    host.gpus = v["gpus"].get<std::vector<std::string>>();
                else
                    return fail("gpus",
                                ctx +
                                    ".gpus: expected \"auto\" or a list of device ids like { \"0\", \"1\" }");
            }
            if (v.contains("memory")) {
                std::optional<std::uint64_t> bytes;
                if (v["memory"].is_number_unsigned() || v["memory"].is_number_integer())
                    bytes = v["memory"].get<std::uint64_t>();
                else if (v["memory"].is_string())
                    bytes = parse_size(v["memory"].get<std::string>());
                if (!bytes) return fail("memory", ctx + ".memory: expected a size like \"32G\"");
                host.memory = bytes;
            }
            if (v.contains("ssh")) {
                const json& t = v["ssh"];
                std::string target = t.is_string() ? t.get<std::string>() : "";
                if (target.empty() || target.front() == '-' ||
                    target.find_first_of(" \t\n") != std::string::npos)
                    return fail("ssh", ctx + ".ssh: expected \"user@host\", got " + t.dump());
                host.kind = HostConfig::Kind::ssh;
                host.ssh.target = target;
            }
            for (const char* key : {"port", "identity", "ssh_options"})
                if (v.contains(key) && host.kind != HostConfig::Kind::ssh)
                    return fail(key, ctx + "." + key + ": only for an ssh host (set ssh = \"user@host\")");
            if (v.contains("port")) {
                if (!v["port"].is_number_integer() || v["port"].get<long long>() < 1 ||
                    v["port"].get<long long>() > 65535)
                    return fail("port", ctx + ".port: expected a port number, got " + v["port"].dump());
                host.ssh.port = v["port"].get<int>();
            }
            if (auto r = str(v, "identity", host.ssh.identity, ctx); !r) return r;
            host.ssh.identity = resolve_path(host.ssh.identity, base_);
            if (v.contains("ssh_options")) {
                if (!string_list(v["ssh_options"]))
                    return fail("ssh_options", ctx + ".ssh_options: expected a list of ssh -o options "
                                                     "like { \"ConnectTimeout=5\" }");
                host.ssh.options = v["ssh_options"].get<std::vector<std::string>>();
            }
            if (v.contains("slurm")) {
                if (host.kind == HostConfig::Kind::ssh)
                    return fail("slurm", ctx + ": a host is either ssh or slurm, not both");
                const json& s = v["slurm"];
                if (auto r = object_with(s, ctx + ".slurm", {"partition", "account", "options"}); !r)
                    return r;
                if (auto r = str(s, "partition", host.slurm.partition, ctx + ".slurm"); !r) return r;
                if (auto r = str(s, "account", host.slurm.account, ctx + ".slurm"); !r) return r;
                if (s.contains("options")) {
                    if (!string_list(s["options"]))
                        return fail("options", ctx + ".slurm.options: expected a list of sbatch arguments");
                    host.slurm.options = s["options"].get<std::vector<std::string>>();
                }
                host.kind = HostConfig::Kind::slurm;
            }
            if (host.gpus_auto && host.kind != HostConfig::Kind::local)
                return fail("gpus", ctx + ".gpus: \"auto\" is for this machine only; list the devices, like "
                                          "{ \"0\", \"1\" }");
            if (it.key() == "local" && host.kind != HostConfig::Kind::local)
                return fail("local",
                            ctx + ": the host named local is this machine; give the remote one another name");
            out[it.key()] = std::move(host);
        }
        return {};
    }

    Result<void> notifiers(const json& n, std::map<std::string, NotifierConfig>& out) {
        if (!is_table(n))
            return fail("notifiers", "notifiers: expected { name = { email = {...} | webhook = {...} } }");
        for (auto it = n.begin(); it != n.end(); ++it) {
            std::string ctx = "notifiers." + it.key();
            if (auto r = object_with(it.value(), ctx, {"email", "webhook"}); !r) return r;
            if (it.value().size() != 1) return fail(it.key(), ctx + ": needs exactly one of email, webhook");
            NotifierConfig nc;
            if (it.value().contains("email")) {
                // An empty table reads as [] and passes object_with: read its fields from {} then.
                const json& e = it.value()["email"].is_object() ? it.value()["email"] : kNoFields;
                if (auto r = object_with(e, ctx + ".email",
                                         {"url", "from", "to", "user", "password_file", "ca_file"});
                    !r)
                    return r;
                std::string url = e.value("url", json()).is_string() ? e["url"].get<std::string>() : "";
                if (url.rfind("smtp://", 0) != 0 && url.rfind("smtps://", 0) != 0)
                    return fail(it.key(),
                                ctx + ".email: needs url = \"smtp://host:port\" or \"smtps://host:port\"");
                if (!e.value("from", json()).is_string())
                    return fail(it.key(), ctx + ".email: needs from = \"address\"");
                if (!string_list(e.value("to", json())) || e["to"].empty())
                    return fail(it.key(), ctx + ".email: needs to = { \"address\", ... }");
                for (const char* key : {"user", "password_file", "ca_file"})
                    if (e.contains(key) && !e[key].is_string())
                        return fail(key, ctx + ".email." + key + ": expected a string");
                if (e.contains("password_file") && !e.contains("user"))
                    return fail("password_file", ctx + ".email: password_file needs user");
                nc.kind = NotifierConfig::Kind::email;
                nc.url = url;
                nc.from = e["from"].get<std::string>();
                for (const auto& to : e["to"])
                    nc.to.push_back(to.get<std::string>());
                nc.user = e.value("user", "");
                nc.password_file = resolve_path(e.value("password_file", ""), base_);
                nc.ca_file = resolve_path(e.value("ca_file", ""), base_);
            } else {
                const json& w = it.value()["webhook"].is_object() ? it.value()["webhook"] : kNoFields;
                if (auto r = object_with(w, ctx + ".webhook", {"url", "format"}); !r) return r;
                std::string url = w.value("url", json()).is_string() ? w["url"].get<std::string>() : "";
                if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
                    return fail(it.key(), ctx + ".webhook: needs url = \"https://...\" (or http://)");
                if (w.contains("format") && !w["format"].is_string())
                    return fail("format", ctx + ".webhook.format: expected json, slack, discord or ntfy");
                std::string f = w.value("format", "json");
                if (f != "json" && f != "slack" && f != "discord" && f != "ntfy")
                    return fail("format",
                                ctx + ".webhook.format: expected json, slack, discord or ntfy, got \"" + f +
                                    "\"");
                nc.kind = NotifierConfig::Kind::webhook;
                nc.url = url;
                nc.format = f;
            }
            out[it.key()] = std::move(nc);
        }
        return {};
    }

    std::string file_;
    std::string source_;
    std::map<std::string, int> lines_;
    std::string base_;
};

// The line where the assignment `key = ...` starts. LuaJIT gives the line of the store itself, which
// for a value spanning several lines (a table) is its last line; the message belongs at the first, the
// last `key =` at or before that.
int assignment_line(std::string_view source, const std::string& key, int store_line) {
    int best = 0;
    for (int l = scripting::find_key_line(source, key); l && l <= store_line;
         l = scripting::find_key_line(source, key, l + 1))
        best = l;
    return best ? best : store_line;
}

} // namespace

std::string resolve_path(const std::string& path, const std::string& base_dir) {
    if (path.empty() || path.front() == '/') return path;
    return (std::filesystem::path(base_dir) / path).lexically_normal().string();
}

Result<Config> load_config(const std::string& path, const std::string& base_dir) {
    std::string base = base_dir;
    if (base.empty()) {
        std::error_code ec;
        base = std::filesystem::current_path(ec).string();
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        if (errno == ENOENT) return Config{}; // a missing config file is fine: the defaults
        return make_error(ErrorCode::invalid,
                          path + ": cannot read the config file: " + std::strerror(errno));
    }
    std::stringstream ss;
    ss << in.rdbuf();
    std::string source = ss.str();

    scripting::SandboxOptions options;
    options.memory_limit = 16u << 20;
    auto created = scripting::LuaState::create(options);
    if (!created) return created.error();
    auto& state = *created.value();
    // All of it protected: the file's code may leave the state at its cap, and a config that fails
    // must be an error, not a panic (a reload runs this in the running daemon).
    std::optional<Error> failed;
    json doc = json::object();
    std::map<std::string, int> lines;
    auto ran = scripting::protected_call(state.L(), [&](lua_State* L) {
        lua_pushlightuserdata(L, const_cast<char*>(&kLinesKey));
        lua_newtable(L);
        lua_rawset(L, LUA_REGISTRYINDEX);
        // The globals' own metatable (the sandbox shows through it) gets the capture.
        state.push_env(L);
        lua_getmetatable(L, -1);
        lua_pushcfunction(L, l_capture);
        lua_setfield(L, -2, "__newindex");
        lua_pop(L, 2);

        if (auto loaded = state.load(source, "@" + path); !loaded) {
            failed = make_error(ErrorCode::invalid, loaded.error().message);
            return;
        }
        state.guard().deadline_ns = uv_hrtime() + 2'000'000'000ull;
        state.guard().deadline_message = "the config file took longer than 2s to run";
        int rc = lua_pcall(L, 0, 1, 0);
        state.guard().deadline_ns = 0;
        if (rc != 0) {
            // Not lua_tostring: it would convert a number in place.
            std::string msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "error";
            if (lua_type(L, -1) != LUA_TSTRING)
                msg = std::string("an error object that is a ") + luaL_typename(L, -1);
            if (rc == LUA_ERRMEM) msg = "the config file ran out of memory (16 MiB)";
            // Every message names the file (SPEC 2), also one raised without a position (error(x, 0),
            // a tail call, the deadline).
            if (msg.rfind(path + ":", 0) != 0) msg = path + ": " + msg;
            failed = make_error(ErrorCode::invalid, msg);
            return;
        }
        if (lua_istable(L, -1)) {
            auto j = scripting::to_json(L, -1, "config");
            if (!j) {
                failed = make_error(ErrorCode::invalid, path + ":1: " + j.error().message);
                return;
            }
            if (!(j->is_object() || (j->is_array() && j->empty()))) {
                failed =
                    make_error(ErrorCode::invalid, path + ":1: the returned config must be a table of keys");
                return;
            }
            if (j->is_object()) doc = *j;
        } else if (!lua_isnil(L, -1)) {
            failed = make_error(ErrorCode::invalid, path + ":1: the file must set globals or return a table");
        } else {
            // The globals the file set, each with the line that set it.
            lua_pushlightuserdata(L, const_cast<char*>(&kLinesKey));
            lua_rawget(L, LUA_REGISTRYINDEX);
            int t = lua_gettop(L);
            lua_pushnil(L);
            while (lua_next(L, t)) {
                std::string key = lua_tostring(L, -2);
                lines[key] = assignment_line(source, key, static_cast<int>(lua_tonumber(L, -1)));
                lua_pop(L, 1);
                state.push_env(L);
                lua_pushlstring(L, key.data(), key.size());
                lua_rawget(L, -2);
                auto j = scripting::to_json(L, -1, key);
                lua_pop(L, 2);
                if (!j) {
                    failed = make_error(ErrorCode::invalid,
                                        path + ":" + std::to_string(lines[key]) + ": " + j.error().message);
                    return;
                }
                if (!j->is_null()) doc[key] = *j;
            }
        }
    });
    if (failed) return *failed;
    if (!ran) return make_error(ErrorCode::invalid, path + ": " + ran.error().message);
    return Checker(path, source, lines, base).check(doc);
}

} // namespace luaflow::config
