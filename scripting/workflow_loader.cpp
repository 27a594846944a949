#include "scripting/workflow_loader.hpp"

#include "scripting/argv_template.hpp"

#include "common/digest.hpp"
#include "common/event.hpp"
#include "common/read_source_file.hpp"
#include "common/size.hpp"
#include "scripting/convert.hpp"
#include "scripting/sandbox_globals.hpp"
#include "scripting/source_lines.hpp"

#include <uv.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

namespace luaflow::scripting {

using nlohmann::json;

namespace {

constexpr std::uint64_t kLoadTimeoutNs = 2'000'000'000;
const char kWorkflowTagsKey = 0; // registry: weak table { [workflow table] = line }

const std::set<std::string> kWorkflowFields = {
    "description", "enabled", "schedule",    "triggers", "input", "context", "concurrency", "overlap",
    "timeout",     "retries", "retry_delay", "backoff",  "queue", "notify",  "actions"};
const std::set<std::string> kActionFields = {
    "run",     "script",      "cmd",     "shell", "needs", "group",     "when", "always", "timeout",
    "retries", "retry_delay", "backoff", "queue", "host",  "resources", "env",  "cwd",    "config"};

// workflow { ... }: tags the table with the caller's line and returns it.
int l_workflow(lua_State* L) {
    if (lua_gettop(L) != 1 || !lua_istable(L, 1))
        return luaL_error(L, "workflow: expected workflow { ... } with a table of fields");
    remember_line(L, &kWorkflowTagsKey, 1, caller_line(L));
    lua_settop(L, 1);
    return 1;
}

void install_workflow_function(LuaState& state) {
    lua_State* L = state.L();
    lua_pushlightuserdata(L, const_cast<char*>(&kWorkflowTagsKey));
    lua_newtable(L);
    lua_newtable(L);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
    state.push_env(L);
    lua_pushcfunction(L, l_workflow);
    lua_setfield(L, -2, "workflow");
    lua_pop(L, 1);
}

// "file:12: message" from Lua into its parts.
LoadError parse_lua_error(const std::string& file, const std::string& msg) {
    if (msg.rfind(file + ":", 0) == 0) {
        size_t p = file.size() + 1;
        size_t colon = msg.find(':', p);
        if (colon != std::string::npos) {
            std::string num = msg.substr(p, colon - p);
            if (!num.empty() && std::all_of(num.begin(), num.end(), ::isdigit)) {
                std::string rest = msg.substr(colon + 1);
                if (!rest.empty() && rest[0] == ' ') rest.erase(0, 1);
                return LoadError{file, std::stoi(num), rest};
            }
        }
    }
    return LoadError{file, 0, msg};
}

// The string at idx whole: a Lua string may hold NULs, which a C string would cut it at (two names,
// "a" and "a\0b", were one name to the store).
std::string exact(lua_State* L, int idx) {
    size_t n = 0;
    const char* s = lua_tolstring(L, idx, &n);
    return std::string(s ? s : "", n);
}

// s with control characters escaped, for a message.
std::string shown(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
        if (c < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

// Why `name` cannot name an action or an input (they are keys in the store, the CLI and JSON), or none.
std::optional<std::string> bad_name(const std::string& name) {
    if (name.empty()) return "a name cannot be empty";
    if (name.size() > 128) return "a name is at most 128 bytes";
    for (unsigned char c : name)
        if (c < 0x20 || c == 0x7f) return "a name cannot hold control characters (or a NUL)";
    return std::nullopt;
}

const char* type_name(lua_State* L, int idx) {
    return luaL_typename(L, idx);
}

std::string describe(lua_State* L, int idx) {
    switch (lua_type(L, idx)) {
    case LUA_TSTRING:
        return "\"" + shown(exact(L, idx)) + "\"";
    case LUA_TNUMBER: {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.14g", lua_tonumber(L, idx));
        return buf;
    }
    case LUA_TBOOLEAN:
        return lua_toboolean(L, idx) ? "true" : "false";
    default:
        return std::string("a ") + type_name(L, idx);
    }
}

// Reads and checks the returned table inside a protected call. The check goes on after an error, so
// that validate lists every one (SPEC 6): each field is a part (part()), a failure records its
// LoadError and raises a Lua error that ends only that part; lua_error unwinds C++ frames correctly on
// x86-64 LuaJIT. Errors that need no unwinding are only recorded (report()).
class Validator {
  public:
    // `stored_scripts`: the text of `script` files when they come from a stored definition, not disk.
    Validator(lua_State* L, LuaState& state, const std::string& file, std::string_view source,
              WorkflowDef& def, const SourceFiles* stored_scripts)
        : L_(L), state_(state), file_(file), source_(source), def_(def), stored_scripts_(stored_scripts) {}

    // Every error found, in source order (by line, then by message: the same on every run, whatever
    // order the tables' keys came in).
    std::vector<LoadError> errors() const {
        std::vector<LoadError> out = errors_;
        auto key = [](const LoadError& e) { return std::tie(e.line, e.message); };
        std::sort(out.begin(), out.end(), [&](const auto& a, const auto& b) { return key(a) < key(b); });
        out.erase(std::unique(out.begin(), out.end(),
                              [&](const auto& a, const auto& b) { return key(a) == key(b); }),
                  out.end());
        return out;
    }

    void run(int wf) {
        def_.line = workflow_line(wf);
        const int line = def_.line;
        part(wf, line, [&](int t) { check_unknown(t, kWorkflowFields, "", line); });
        part(wf, line, [&](int t) { def_.description = opt_string(t, "description", "").value_or(""); });
        part(wf, line, [&](int t) { def_.enabled = opt_bool(t, "enabled", "").value_or(true); });
        part(wf, line, [&](int t) { def_.schedule = schedule(t); });
        part(wf, line, [&](int t) { triggers(t); });
        part(wf, line, [&](int t) { inputs(t); });
        part(wf, line, [&](int t) {
            def_.context = opt_table_json(t, "context", "", true);
            if (def_.context.is_array() && def_.context.empty()) def_.context = json::object();
            if (!def_.context.is_object()) {
                def_.context = json::object();
                fail(field_line("context", line), "field 'context': expected a table of named values");
            }
        });
        part(wf, line, [&](int t) {
            if (auto c = opt_int(t, "concurrency", "", 1)) def_.concurrency = static_cast<int>(*c);
        });
        part(wf, line, [&](int t) {
            if (auto o = opt_enum(t, "overlap", "", {"queue", "skip"}))
                def_.overlap = *o == "skip" ? Overlap::skip : Overlap::queue;
        });
        part(wf, line, [&](int t) { def_.timeout = opt_duration(t, "timeout", ""); });
        part(wf, line,
             [&](int t) { defaults_.retries = static_cast<int>(opt_int(t, "retries", "", 0).value_or(0)); });
        part(wf, line, [&](int t) {
            defaults_.retry_delay = opt_duration(t, "retry_delay", "").value_or(kDefaultRetryDelay);
        });
        part(wf, line, [&](int t) {
            if (auto b = opt_enum(t, "backoff", "", {"exponential", "fixed"}))
                defaults_.backoff = *b == "fixed" ? Backoff::fixed : Backoff::exponential;
        });
        part(wf, line, [&](int t) { def_.queue = opt_string(t, "queue", "").value_or("default"); });
        part(wf, line, [&](int t) { def_.notify = notify(t); });
        part(wf, line, [&](int t) { actions(t); });
    }

  private:
    struct Defaults {
        int retries = 0;
        Millis retry_delay = kDefaultRetryDelay;
        Backoff backoff = Backoff::exponential;
    };

    // Records an error and goes on.
    void report(int line, const std::string& msg) { errors_.push_back(LoadError{file_, line, msg}); }

    // Records an error and ends the current part.
    [[noreturn]] void fail(int line, const std::string& msg) {
        report(line, msg);
        lua_pushstring(L_, msg.c_str());
        lua_error(L_);
        __builtin_unreachable();
    }

    using PartFn = std::function<void(int table)>;

    static int run_part(lua_State* L) {
        (*static_cast<const PartFn*>(lua_touserdata(L, 1)))(2);
        return 0;
    }

    // Runs fn(t) in a protected call, where t is the part's own index of the table at `table` (a call
    // has its own stack: indexes of the caller's stack mean nothing in it). An error ends only this
    // part; one that fail() did not record (out of memory, a metamethod's error) is recorded at `line`.
    void part(int table, int line, const PartFn& fn) {
        int top = lua_gettop(L_);
        std::size_t before = errors_.size();
        lua_pushcfunction(L_, run_part);
        lua_pushlightuserdata(L_, const_cast<PartFn*>(&fn));
        lua_pushvalue(L_, table);
        if (lua_pcall(L_, 2, 0, 0) != 0 && errors_.size() == before)
            report(line, lua_isstring(L_, -1) ? lua_tostring(L_, -1) : "error while checking the workflow");
        lua_settop(L_, top);
    }

    int workflow_line(int wf) {
        lua_pushlightuserdata(L_, const_cast<char*>(&kWorkflowTagsKey));
        lua_rawget(L_, LUA_REGISTRYINDEX);
        lua_pushvalue(L_, wf);
        lua_rawget(L_, -2);
        int line = lua_isnumber(L_, -1) ? static_cast<int>(lua_tonumber(L_, -1)) : 1;
        lua_pop(L_, 2);
        return line;
    }

    int field_line(const std::string& key, int from) {
        int l = find_key_line(source_, key, from);
        return l ? l : from;
    }

    // "action 'x': " or "" for workflow fields.
    std::string where(const std::string& ctx) const { return ctx.empty() ? "" : ctx + ": "; }
    int line_for(const std::string& ctx, const char* key) {
        return field_line(key, ctx.empty() ? def_.line : current_action_line_);
    }

    void check_unknown(int t, const std::set<std::string>& known, const std::string& ctx, int line) {
        lua_pushnil(L_);
        while (lua_next(L_, t)) {
            lua_pop(L_, 1);
            if (lua_type(L_, -1) != LUA_TSTRING) {
                report(line, where(ctx) + "unexpected key " + describe(L_, -1) + " (fields have names)");
                continue;
            }
            std::string k = exact(L_, -1);
            if (!known.count(k)) report(field_line(k, line), where(ctx) + "unknown field '" + k + "'");
        }
    }

    // Pushes t[key]; returns false (and pops) when nil. Raw: a metatable on the file's tables (an
    // __index trap) must not run code in the daemon's check, after the load's deadline.
    bool get(int t, const char* key) {
        if (t < 0 && t > LUA_REGISTRYINDEX) t = lua_gettop(L_) + t + 1;
        lua_pushstring(L_, key);
        lua_rawget(L_, t);
        if (lua_isnil(L_, -1)) {
            lua_pop(L_, 1);
            return false;
        }
        return true;
    }

    [[noreturn]] void expected(const std::string& ctx, const char* key, const std::string& what) {
        std::string got = describe(L_, -1);
        fail(line_for(ctx, key), where(ctx) + "field '" + key + "': expected " + what + ", got " + got);
    }

    std::optional<std::string> opt_string(int t, const char* key, const std::string& ctx) {
        if (!get(t, key)) return std::nullopt;
        if (lua_type(L_, -1) != LUA_TSTRING) expected(ctx, key, "a string");
        std::string s = exact(L_, -1);
        lua_pop(L_, 1);
        return s;
    }

    std::optional<bool> opt_bool(int t, const char* key, const std::string& ctx) {
        if (!get(t, key)) return std::nullopt;
        if (!lua_isboolean(L_, -1)) expected(ctx, key, "true or false");
        bool b = lua_toboolean(L_, -1);
        lua_pop(L_, 1);
        return b;
    }

    std::optional<long> opt_int(int t, const char* key, const std::string& ctx, long min) {
        if (!get(t, key)) return std::nullopt;
        double d = lua_type(L_, -1) == LUA_TNUMBER ? lua_tonumber(L_, -1) : 0.5;
        if (lua_type(L_, -1) != LUA_TNUMBER || d != static_cast<double>(static_cast<long>(d)) ||
            d < static_cast<double>(min))
            expected(ctx, key, min > 0 ? "a positive integer" : "an integer >= " + std::to_string(min));
        lua_pop(L_, 1);
        return static_cast<long>(d);
    }

    std::optional<std::string> opt_enum(int t, const char* key, const std::string& ctx,
                                        std::initializer_list<const char*> values) {
        if (!get(t, key)) return std::nullopt;
        std::string list;
        for (const char* v : values)
            list += (list.empty() ? "\"" : " or \"") + std::string(v) + "\"";
        if (lua_type(L_, -1) != LUA_TSTRING) expected(ctx, key, list);
        std::string s = lua_tostring(L_, -1);
        for (const char* v : values)
            if (s == v) {
                lua_pop(L_, 1);
                return s;
            }
        expected(ctx, key, list);
    }

    std::optional<Millis> duration_at_top(const std::string& ctx, const char* key) {
        if (lua_type(L_, -1) == LUA_TNUMBER) {
            if (auto ms = duration_from_seconds(lua_tonumber(L_, -1))) return ms;
        } else if (lua_type(L_, -1) == LUA_TSTRING) {
            if (auto ms = parse_duration(lua_tostring(L_, -1))) return ms;
            std::string got = lua_tostring(L_, -1);
            fail(line_for(ctx, key), where(ctx) + "field '" + key + "': '" + got +
                                         "' is not a duration (use 500ms, 30s, 5m, 2h, 1d or seconds)");
        }
        expected(ctx, key, "a duration (seconds, or a string like \"30s\")");
    }

    std::optional<Millis> opt_duration(int t, const char* key, const std::string& ctx) {
        if (!get(t, key)) return std::nullopt;
        auto ms = duration_at_top(ctx, key);
        lua_pop(L_, 1);
        return ms;
    }

    json opt_table_json(int t, const char* key, const std::string& ctx, bool table_only) {
        if (!get(t, key)) return table_only ? json::object() : json();
        if (table_only && !lua_istable(L_, -1)) expected(ctx, key, "a table");
        auto j = to_json(L_, -1, key);
        if (!j) fail(line_for(ctx, key), where(ctx) + "field '" + j.error().message);
        lua_pop(L_, 1);
        return *j;
    }

    std::vector<std::string> string_list(const std::string& ctx, const char* key) {
        // the value is on top of the stack
        if (!lua_istable(L_, -1)) expected(ctx, key, "a list of strings");
        std::vector<std::string> out;
        int n = static_cast<int>(lua_objlen(L_, -1));
        for (int i = 1; i <= n; ++i) {
            lua_rawgeti(L_, -1, i);
            if (lua_type(L_, -1) != LUA_TSTRING)
                fail(line_for(ctx, key), where(ctx) + "field '" + key + "[" + std::to_string(i) +
                                             "]': expected a string, got " + describe(L_, -1));
            out.push_back(exact(L_, -1));
            lua_pop(L_, 1);
        }
        return out;
    }

    json schedule(int wf) {
        if (!get(wf, "schedule")) return json();
        int line = line_for("", "schedule");
        def_.schedule_line = line;
        json j;
        if (lua_type(L_, -1) == LUA_TSTRING) {
            j = lua_tostring(L_, -1);
        } else if (lua_istable(L_, -1)) {
            auto r = to_json(L_, -1, "schedule");
            if (!r) fail(line, r.error().message);
            j = *r; // its rules are checked by daemon/schedule (schedule::checked), the one place that
                    // knows them
        } else {
            expected("", "schedule", "an RRULE string or a table");
        }
        lua_pop(L_, 1);
        return j;
    }

    void triggers(int wf) {
        if (!get(wf, "triggers")) return;
        if (!lua_istable(L_, -1)) expected("", "triggers", "a table");
        int line = line_for("", "triggers");
        def_.triggers.line = line;
        part(lua_gettop(L_), line, [&](int t) {
            check_unknown(t, {"manual", "webhook", "watch", "after"}, "triggers", line);
        });
        part(lua_gettop(L_), line,
             [&](int t) { def_.triggers.manual = opt_bool(t, "manual", "triggers").value_or(true); });
        // A sub-table, its unknown fields reported; null when absent or not a table.
        auto sub = [&](int t, const char* key, std::set<std::string> fields) {
            json j = opt_table_json(t, key, "triggers", true);
            if (!get(t, key)) return json();
            lua_pop(L_, 1);
            if (j.is_array() && j.empty()) j = json::object(); // `webhook = {}`: on, with no options
            for (auto it = j.begin(); it != j.end(); ++it)
                if (!fields.count(it.key()))
                    report(field_line(it.key(), line),
                           "triggers." + std::string(key) + ": unknown field '" + it.key() + "'");
            return j;
        };
        part(lua_gettop(L_), line, [&](int t) {
            json hook = sub(t, "webhook", {"secret", "secret_file", "respond"});
            for (const char* key : {"secret", "secret_file", "respond"})
                if (hook.is_object() && hook.contains(key) && !hook[key].is_string())
                    fail(line, std::string("triggers.webhook.") + key + ": expected a string, got " +
                                   hook[key].dump());
            if (hook.is_object() && hook.contains("secret") && hook.contains("secret_file"))
                fail(line, "triggers.webhook: secret or secret_file, not both");
            def_.triggers.webhook = hook;
        });
        part(lua_gettop(L_), line, [&](int t) {
            json watch = sub(t, "watch", {"path", "pattern", "events"});
            if (watch.is_null()) return;
            if (!watch.value("path", json()).is_string()) fail(line, "triggers.watch: needs path = \"...\"");
            for (const auto& ev : watch.value("events", json::array()))
                if (!ev.is_string() || (ev != "create" && ev != "modify" && ev != "delete"))
                    fail(line, "triggers.watch.events: expected \"create\", \"modify\" or \"delete\", got " +
                                   ev.dump());
            def_.triggers.watch = watch;
        });
        part(lua_gettop(L_), line, [&](int t) {
            json after = sub(t, "after", {"workflow", "on"});
            if (after.is_null()) return;
            if (!after.value("workflow", json()).is_string())
                fail(line, "triggers.after: needs workflow = \"...\"");
            if (after.contains("on") && !after["on"].is_string())
                fail(line, "triggers.after.on: expected \"success\", \"failure\" or \"any\", got " +
                               after["on"].dump());
            std::string on = after.value("on", "success");
            if (on != "success" && on != "failure" && on != "any")
                fail(line,
                     "triggers.after.on: expected \"success\", \"failure\" or \"any\", got \"" + on + "\"");
            after["on"] = on;
            def_.triggers.after = after;
        });
        lua_pop(L_, 1);
    }

    void inputs(int wf) {
        if (!get(wf, "input")) return;
        if (!lua_istable(L_, -1)) expected("", "input", "a table of declarations");
        int t = lua_gettop(L_);
        lua_pushnil(L_);
        while (lua_next(L_, t)) {
            if (lua_type(L_, -2) != LUA_TSTRING) {
                report(line_for("", "input"), "input: names must be strings, got " + describe(L_, -2));
                lua_pop(L_, 1);
                continue;
            }
            std::string name = exact(L_, -2);
            if (auto why = bad_name(name)) {
                report(line_for("", "input"), "input \"" + shown(name) + "\": " + *why);
                lua_pop(L_, 1);
                continue;
            }
            std::string ctx = "input '" + name + "'";
            int line = field_line(name, line_for("", "input"));
            part(lua_gettop(L_), line, [&](int decl) { input(decl, name, ctx, line); });
            lua_pop(L_, 1);
        }
        lua_pop(L_, 1);
        std::sort(def_.inputs.begin(), def_.inputs.end(), [](auto& a, auto& b) { return a.name < b.name; });
    }

    // One declaration, `name = { type =, required =, default = }`, at `decl`.
    void input(int decl, const std::string& name, const std::string& ctx, int line) {
        InputDecl d;
        d.name = name;
        {
            if (!lua_istable(L_, decl))
                fail(line, ctx + ": expected { type = ..., required = ..., default = ... }");
            check_unknown(decl, {"type", "required", "default"}, ctx, line);
            std::string type =
                opt_enum(decl, "type", ctx, {"string", "number", "boolean", "table"}).value_or("string");
            d.type = type == "number"    ? InputType::number
                     : type == "boolean" ? InputType::boolean
                     : type == "table"   ? InputType::table
                                         : InputType::string;
            d.required = opt_bool(decl, "required", ctx).value_or(false);
            if (get(decl, "default")) {
                auto j = to_json(L_, -1, ctx + ".default");
                if (!j) fail(line, j.error().message);
                bool ok = (d.type == InputType::string && j->is_string()) ||
                          (d.type == InputType::number && j->is_number()) ||
                          (d.type == InputType::boolean && j->is_boolean()) ||
                          (d.type == InputType::table && (j->is_object() || j->is_array()));
                if (!ok) fail(line, ctx + ": default " + j->dump() + " is not a " + type);
                d.default_value = *j;
                lua_pop(L_, 1);
            }
        }
        def_.inputs.push_back(std::move(d));
    }

    json notify(int wf) {
        if (!get(wf, "notify")) return json::object();
        int line = line_for("", "notify");
        auto j = to_json(L_, -1, "notify");
        if (!j || !(j->is_object() || (j->is_array() && j->empty())))
            fail(line, "field 'notify': expected { event = { notifier, ... } }");
        lua_pop(L_, 1);
        json out = json::object();
        if (j->is_array()) return out;
        for (auto it = j->begin(); it != j->end(); ++it) {
            if (!parse_event(it.key())) {
                report(line, "notify: unknown event '" + it.key() + "' (" + event_names() + ")");
                continue;
            }
            if (!it.value().is_array()) {
                report(line, "notify." + it.key() + ": expected a list of notifier names");
                continue;
            }
            bool names = true;
            const std::set<std::string>* known = LuaState::from(L_)->notifiers();
            for (const auto& n : it.value())
                if (!n.is_string()) {
                    report(line, "notify." + it.key() + ": expected notifier names, got " + n.dump());
                    names = false;
                } else if (known && !known->count(n.get<std::string>())) {
                    std::string have;
                    for (const std::string& k : *known)
                        have += (have.empty() ? "" : ", ") + k;
                    report(line, "notify." + it.key() + ": unknown notifier '" + n.get<std::string>() +
                                     "' (the config has " + (have.empty() ? "none" : have) + ")");
                    names = false;
                }
            if (names) out[it.key()] = it.value();
        }
        return out;
    }

    void actions(int wf) {
        if (!get(wf, "actions")) fail(def_.line, "field 'actions' is required: a table of name = { ... }");
        if (!lua_istable(L_, -1)) expected("", "actions", "a table of name = { ... }");
        int t = lua_gettop(L_);
        lua_pushnil(L_);
        while (lua_next(L_, t)) {
            if (lua_type(L_, -2) != LUA_TSTRING) {
                report(line_for("", "actions"), "actions: names must be strings, got " + describe(L_, -2));
                lua_pop(L_, 1);
                continue;
            }
            std::string name = exact(L_, -2);
            if (auto why = bad_name(name)) {
                report(line_for("", "actions"), "action \"" + shown(name) + "\": " + *why);
                lua_pop(L_, 1);
                continue;
            }
            // Kept even when some of its fields are wrong, so that a `needs` naming it is not an error
            // too.
            def_.actions.push_back(action(name, lua_gettop(L_)));
            lua_pop(L_, 1);
        }
        lua_pop(L_, 1);
        if (def_.actions.empty())
            fail(line_for("", "actions"), "field 'actions': at least one action is required");
        std::sort(def_.actions.begin(), def_.actions.end(), [](auto& a, auto& b) { return a.name < b.name; });
        resolve_deps();
    }

    ActionDef action(const std::string& name, int t) {
        ActionDef a;
        a.name = name;
        a.retries = defaults_.retries;
        a.retry_delay = defaults_.retry_delay;
        a.backoff = defaults_.backoff;
        a.queue = def_.queue;
        a.host = "local";
        const std::string ctx = "action '" + name + "'";
        a.line = field_line(name, def_.line);
        if (!lua_istable(L_, t)) {
            report(a.line, ctx + ": expected a table of fields, got " + describe(L_, t));
            return a;
        }
        if (get(t, "run")) {
            if (lua_isfunction(L_, -1)) {
                lua_Debug ar;
                lua_pushvalue(L_, -1);
                if (lua_getinfo(L_, ">S", &ar) && ar.linedefined > 0) a.line = ar.linedefined;
            }
            lua_pop(L_, 1);
        }
        current_action_line_ = a.line;
        // Each field is its own part: one wrong field does not hide the next one's error.
        auto field = [&](const PartFn& fn) { part(t, a.line, fn); };
        const std::size_t before = errors_.size();
        field([&](int at) { check_unknown(at, kActionFields, ctx, a.line); });
        const bool unknown_fields = errors_.size() > before;
        int kinds = 0;
        for (ActionKind kind : {ActionKind::run, ActionKind::script, ActionKind::cmd, ActionKind::shell}) {
            if (!get(t, to_string(kind))) continue;
            lua_pop(L_, 1);
            if (++kinds == 1) a.kind = kind;
        }
        // Without any, an unknown field is most likely the kind misspelt (`rnu`): that error says it.
        if (kinds > 1 || (kinds == 0 && !unknown_fields))
            report(a.line, ctx + ": exactly one of run, script, cmd, shell is required");
        field([&](int at) {
            if (!get(at, "run")) return;
            if (!lua_isfunction(L_, -1)) expected(ctx, "run", "a function(ctx)");
            code_[a.name].fn = LuaRef::pop(L_);
        });
        field([&](int at) {
            if (auto s = opt_string(at, "script", ctx)) {
                a.script = *s;
                load_script(a, ctx);
            }
        });
        field([&](int at) {
            if (!get(at, "cmd")) return;
            a.cmd = string_list(ctx, "cmd");
            if (a.cmd.empty()) fail(line_for(ctx, "cmd"), ctx + ": field 'cmd' needs at least the program");
            lua_pop(L_, 1);
            if (has_templates(a.cmd)) compile_argv(a, ctx);
        });
        field([&](int at) {
            if (auto s = opt_string(at, "shell", ctx)) a.shell = *s;
        });
        if (!state_.exec_allowed() && (!a.cmd.empty() || !a.shell.empty()))
            report(line_for(ctx, a.cmd.empty() ? "shell" : "cmd"),
                   ctx + ": runs a program (" + (a.cmd.empty() ? "shell" : "cmd") +
                       "), which sandbox.exec = false in the config refuses");
        if (kinds == 1 && (a.kind == ActionKind::run || a.kind == ActionKind::script)) {
            for (const char* key : {"host", "resources", "env", "cwd"}) {
                if (!get(t, key)) continue;
                lua_pop(L_, 1);
                report(line_for(ctx, key), ctx + ": field '" + key + "' is for cmd and shell actions; a " +
                                               to_string(a.kind) + " action runs inside the daemon");
            }
        }
        field([&](int at) {
            if (!get(at, "needs")) return;
            a.needs = string_list(ctx, "needs");
            lua_pop(L_, 1);
        });
        field([&](int at) {
            if (auto g = opt_int(at, "group", ctx, -1000000000)) a.group = *g;
        });
        field([&](int at) {
            if (!get(at, "when")) return;
            if (!lua_isfunction(L_, -1)) expected(ctx, "when", "a function(ctx) returning true or false");
            code_[a.name].when = LuaRef::pop(L_);
            a.has_when = true;
        });
        field([&](int at) { a.always = opt_bool(at, "always", ctx).value_or(false); });
        field([&](int at) { a.timeout = opt_duration(at, "timeout", ctx); });
        field([&](int at) {
            if (auto r = opt_int(at, "retries", ctx, 0)) a.retries = static_cast<int>(*r);
        });
        field([&](int at) {
            if (auto d = opt_duration(at, "retry_delay", ctx)) a.retry_delay = *d;
        });
        field([&](int at) {
            if (auto b = opt_enum(at, "backoff", ctx, {"exponential", "fixed"}))
                a.backoff = *b == "fixed" ? Backoff::fixed : Backoff::exponential;
        });
        field([&](int at) { a.queue = opt_string(at, "queue", ctx).value_or(def_.queue); });
        field([&](int at) { a.host = opt_string(at, "host", ctx).value_or("local"); });
        field([&](int at) { resources(at, ctx, a); });
        field([&](int at) {
            if (!get(at, "env")) return;
            if (!lua_istable(L_, -1)) expected(ctx, "env", "a table of NAME = \"value\"");
            int e = lua_gettop(L_);
            lua_pushnil(L_);
            while (lua_next(L_, e)) {
                if (lua_type(L_, -2) != LUA_TSTRING ||
                    !(lua_type(L_, -1) == LUA_TSTRING || lua_type(L_, -1) == LUA_TNUMBER))
                    fail(line_for(ctx, "env"), ctx + ": field 'env': expected NAME = \"value\" pairs");
                std::string k = exact(L_, -2);
                lua_pushvalue(L_, -1);
                std::string v = exact(L_, -1);
                if (k.empty() || k.find('=') != std::string::npos || k.find('\0') != std::string::npos ||
                    v.find('\0') != std::string::npos)
                    fail(line_for(ctx, "env"),
                         ctx + ": field 'env': \"" + shown(k) +
                             "\": a variable's name cannot be empty or hold '=' or a NUL, "
                             "nor its value a NUL");
                a.env[k] = v;
                lua_pop(L_, 2);
            }
            lua_pop(L_, 1);
        });
        field([&](int at) { a.cwd = opt_string(at, "cwd", ctx).value_or(""); });
        field([&](int at) {
            if (!get(at, "config")) return;
            if (!lua_istable(L_, -1)) expected(ctx, "config", "a table");
            auto j = to_json(L_, -1, "config");
            if (!j) fail(line_for(ctx, "config"), ctx + ": " + j.error().message);
            a.config = j->is_array() && j->empty() ? json::object() : *j;
            lua_pop(L_, 1);
        });
        return a;
    }

    void resources(int t, const std::string& ctx, ActionDef& a) {
        if (!get(t, "resources")) return;
        if (!lua_istable(L_, -1)) expected(ctx, "resources", "{ cpus =, gpus =, memory = }");
        const int line = line_for(ctx, "resources");
        const std::string rctx = ctx + ": resources";
        part(lua_gettop(L_), line, [&](int r) { check_unknown(r, {"cpus", "gpus", "memory"}, rctx, line); });
        part(lua_gettop(L_), line, [&](int r) {
            if (!get(r, "cpus")) return;
            if (lua_type(L_, -1) != LUA_TNUMBER || lua_tonumber(L_, -1) < 0)
                expected(rctx, "cpus", "a number >= 0");
            a.resources.cpus = lua_tonumber(L_, -1);
        });
        part(lua_gettop(L_), line, [&](int r) {
            if (auto g = opt_int(r, "gpus", rctx, 0)) a.resources.gpus = static_cast<int>(*g);
        });
        part(lua_gettop(L_), line, [&](int r) {
            if (!get(r, "memory")) return;
            std::optional<std::uint64_t> bytes;
            if (lua_type(L_, -1) == LUA_TNUMBER && lua_tonumber(L_, -1) >= 0)
                bytes = static_cast<std::uint64_t>(lua_tonumber(L_, -1));
            else if (lua_type(L_, -1) == LUA_TSTRING)
                bytes = parse_size(lua_tostring(L_, -1));
            if (!bytes) expected(rctx, "memory", "a size like \"512M\" or \"2G\"");
            a.resources.memory = *bytes;
        });
        lua_pop(L_, 1);
    }

    // Each {{ expr }} is compiled on its own first, so that a syntax error names its argument.
    void compile_argv(ActionDef& a, const std::string& ctx) {
        int line = line_for(ctx, "cmd");
        std::vector<std::vector<TemplatePart>> parts;
        for (std::size_t i = 0; i < a.cmd.size(); ++i) {
            auto p = parse_template(a.cmd[i], i);
            if (!p) fail(line, ctx + ": " + p.error().message);
            for (const TemplatePart& part : *p) {
                if (!part.is_expression) continue;
                std::string where = "cmd[" + std::to_string(i + 1) + "] {{ " + part.text + " }}";
                auto checked = state_.load("return (" + part.text + ")", "=" + where);
                if (!checked) fail(line, ctx + ": " + checked.error().message);
                lua_pop(L_, 1);
            }
            parts.push_back(std::move(*p));
        }
        auto loaded = state_.load(argv_chunk(parts), "=" + ctx + " cmd");
        if (!loaded) fail(line, ctx + ": " + loaded.error().message);
        code_[a.name].argv_fn = LuaRef::pop(L_);
        a.expands_argv = true;
    }

    void load_script(ActionDef& a, const std::string& ctx) {
        int line = line_for(ctx, "script");
        if (a.script.empty() || a.script[0] == '/' || a.script.find("..") != std::string::npos)
            fail(line, ctx + ": script '" + a.script +
                           "' must be a path inside the workflows directory (no '/' at the start, no '..')");
        std::string path = state_.workflows_dir() + "/" + a.script;
        std::string text;
        if (stored_scripts_) {
            auto it = stored_scripts_->find(a.script);
            if (it == stored_scripts_->end())
                fail(line, ctx + ": script file " + path + " is not in the stored definition");
            text = it->second;
        } else {
            // A FIFO or a device named as a script must not hang the load (issue 14, item 7).
            auto read = read_source_file(path);
            if (!read)
                fail(line, ctx + ": script file " + path +
                               " cannot be read: " + read.error().message.substr(path.size() + 2));
            text = std::move(*read);
        }
        // Kept with the definition, so that an execution runs this text even after an edit (SPEC 5).
        def_.scripts[a.script] = text;
        auto loaded = state_.load(text, "@" + path);
        if (!loaded) fail(line, ctx + ": " + loaded.error().message);
        code_[a.name].fn = LuaRef::pop(L_);
    }

    void resolve_deps() {
        const json& hook = def_.triggers.webhook;
        if (hook.is_object() && hook.contains("respond") &&
            !def_.action_index(hook["respond"].get<std::string>()))
            report(def_.triggers.line,
                   "triggers.webhook.respond: no action '" + hook["respond"].get<std::string>() + "'");
        for (ActionDef& a : def_.actions) {
            current_action_line_ = a.line;
            for (const std::string& n : a.needs) {
                auto idx = def_.action_index(n);
                if (!idx) {
                    report(field_line("needs", a.line),
                           "action '" + a.name + "': needs unknown action '" + n + "'");
                    continue;
                }
                if (*idx == static_cast<size_t>(&a - def_.actions.data())) {
                    report(field_line("needs", a.line), "action '" + a.name + "': needs itself");
                    continue;
                }
                a.deps.push_back(*idx);
            }
            if (a.group) {
                // Every action of the largest group below this one's.
                std::optional<long> prev;
                for (const ActionDef& b : def_.actions)
                    if (b.group && *b.group < *a.group && (!prev || *b.group > *prev)) prev = b.group;
                if (prev)
                    for (size_t i = 0; i < def_.actions.size(); ++i)
                        if (def_.actions[i].group == prev) a.deps.push_back(i);
            }
            std::sort(a.deps.begin(), a.deps.end());
            a.deps.erase(std::unique(a.deps.begin(), a.deps.end()), a.deps.end());
        }
        for (size_t i = 0; i < def_.actions.size(); ++i)
            for (size_t d : def_.actions[i].deps)
                def_.actions[d].dependents.push_back(i);
        // A cycle: depth-first search, reporting the path.
        std::vector<int> color(def_.actions.size(), 0);
        std::vector<size_t> stack;
        std::function<void(size_t)> visit = [&](size_t i) {
            color[i] = 1;
            stack.push_back(i);
            for (size_t d : def_.actions[i].deps) {
                if (color[d] == 1) {
                    std::string path;
                    auto from = std::find(stack.begin(), stack.end(), d);
                    for (auto it = from; it != stack.end(); ++it)
                        path += def_.actions[*it].name + " -> ";
                    path += def_.actions[d].name;
                    const ActionDef& a = def_.actions[d];
                    report(field_line("needs", a.line), "action '" + a.name + "': needs cycle " + path);
                    continue;
                }
                if (color[d] == 0) visit(d);
            }
            stack.pop_back();
            color[i] = 2;
        };
        for (size_t i = 0; i < def_.actions.size(); ++i)
            if (color[i] == 0) visit(i);
    }

    lua_State* L_;
    LuaState& state_;
    const std::string& file_;
    std::string_view source_;
    WorkflowDef& def_;
    const SourceFiles* stored_scripts_;
    Defaults defaults_;
    int current_action_line_ = 0;
    std::vector<LoadError> errors_;

  public:
    // The functions each action defined, by its name (WorkflowDef::actions is sorted by name at the end).
    std::map<std::string, ActionCode> code_;
};

} // namespace

std::string LoadError::to_string() const {
    // Line 0: the problem has no line (the file cannot be read, memory ran out); "FILE:0:" would send an
    // editor to a line that does not exist.
    if (line <= 0) return file + ": " + message;
    return file + ":" + std::to_string(line) + ": " + message;
}

std::vector<LoadError> LoadError::all() const {
    std::vector<LoadError> out = {LoadError{file, line, message, {}}};
    out.insert(out.end(), more.begin(), more.end());
    return out;
}

bool is_valid_workflow_id(std::string_view id) {
    if (id.empty() || !std::isalnum(static_cast<unsigned char>(id[0]))) return false;
    for (char c : id)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-')) return false;
    return true;
}

std::string source_digest(std::string_view source) {
    return content_digest(source);
}

LoadResult load_workflow(const std::string& id, const std::string& file, std::string_view source,
                         const SandboxOptions& options, const DefCheck& check) {
    auto created = LuaState::create(options);
    if (!created) return LoadError{file, 0, created.error().message};
    std::shared_ptr<LuaState> state(std::move(created.value()));
    lua_State* L = state->L();
    // All of it protected: the file's code may leave the state at its cap, and the daemon's own calls
    // after it (the registry slot for the table) must not raise outside a pcall.
    std::optional<LoadError> failed;
    LuaRef table;
    auto ran = protected_call(L, [&](lua_State* S) {
        install_workflow_function(*state);
        if (auto loaded = state->load(source, "@" + file); !loaded) {
            failed = parse_lua_error(file, loaded.error().message);
            return;
        }
        RunGuard& g = state->guard();
        g.deadline_ns = uv_hrtime() + kLoadTimeoutNs;
        g.deadline_message = "loading took longer than 2s (runaway code at load time?)";
        int rc = lua_pcall(S, 0, 1, 0);
        g.deadline_ns = 0;
        if (g.stopping) reset_hook(*state);
        g.deadline_hit = false;
        g.stopping = false;
        g.deadline_message = "timed out";
        if (rc != 0) {
            std::string msg = lua_type(S, -1) == LUA_TSTRING ? lua_tostring(S, -1) : "error while loading";
            if (rc == LUA_ERRMEM) msg = "memory limit exceeded while loading";
            failed = parse_lua_error(file, msg);
            return;
        }
        bool tagged = false;
        if (lua_istable(S, -1)) {
            lua_pushlightuserdata(S, const_cast<char*>(&kWorkflowTagsKey));
            lua_rawget(S, LUA_REGISTRYINDEX);
            lua_pushvalue(S, -2);
            lua_rawget(S, -2);
            tagged = !lua_isnil(S, -1);
            lua_pop(S, 2);
        }
        if (!tagged) {
            failed = LoadError{file, 1, "the file must return workflow { ... }"};
            return;
        }
        table = LuaRef::pop(S);
    });
    if (failed) return *failed;
    if (!ran) return LoadError{file, 0, "memory limit exceeded while loading: " + ran.error().message};
    auto def = std::make_shared<WorkflowDef>();
    def->id = id;
    def->file = file;
    Validator v(L, *state, file, source, *def, options.scripts.get());
    auto r = protected_call(L, [&](lua_State* S) {
        table.push(S);
        v.run(lua_gettop(S));
    });
    std::vector<LoadError> errors = v.errors();
    if (!r && errors.empty()) errors.push_back(LoadError{file, def->line, r.error().message, {}});
    if (check)
        if (auto e = check(*def)) {
            // Placed by line among the others (source order); on a tie, after them.
            auto at =
                std::upper_bound(errors.begin(), errors.end(), *e,
                                 [](const LoadError& a, const LoadError& b) { return a.line < b.line; });
            errors.insert(at, *e);
        }
    if (!errors.empty()) {
        LoadError first = std::move(errors.front());
        first.more.assign(std::make_move_iterator(errors.begin() + 1), std::make_move_iterator(errors.end()));
        return first;
    }
    // From now on a global an action sets is its own (SPEC 3).
    if (auto sealed = protected_call(L, [](lua_State* S) { seal_globals(S); }); !sealed)
        return LoadError{file, 0, "memory limit exceeded while loading: " + sealed.error().message};
    def->lib = options.lib;
    def->source_hash = definition_digest(source, def->scripts, options.lib.get());
    def->source = std::string(source);
    auto code = std::make_shared<WorkflowCode>();
    code->lua = state;
    for (const ActionDef& a : def->actions) {
        code->actions.push_back(std::move(v.code_[a.name]));
        def->uses_lua = def->uses_lua || a.kind == ActionKind::run || a.kind == ActionKind::script ||
                        a.has_when || a.expands_argv;
    }
    def->code = std::move(code);
    return def;
}

Result<std::shared_ptr<const WorkflowCode>> load_code(const WorkflowDef& def, SandboxOptions options) {
    if (def.code) return def.code;
    options.lib = def.lib;
    options.scripts = std::make_shared<const SourceFiles>(def.scripts);
    options.own_arena = true; // this state runs the workflow's actions
    LoadResult again = load_workflow(def.id, def.file, def.source, options);
    if (auto* error = std::get_if<LoadError>(&again))
        return make_error(ErrorCode::internal, "workflow '" + def.id + "': evaluating " + def.file +
                                                   " again for its state failed: " + error->to_string());
    const auto& fresh = std::get<std::shared_ptr<WorkflowDef>>(again);
    // The same text, scripts and lib/ give the same definition, unless the file's top level computes it
    // from something that changes (the time, a random number): then its functions cannot stand in.
    bool same = fresh->actions.size() == def.actions.size();
    for (std::size_t i = 0; same && i < def.actions.size(); ++i) {
        const ActionDef &a = def.actions[i], &b = fresh->actions[i];
        same = a.name == b.name && a.kind == b.kind && a.has_when == b.has_when &&
               a.expands_argv == b.expands_argv;
    }
    if (!same)
        return make_error(
            ErrorCode::internal,
            "workflow '" + def.id + "': " + def.file +
                " gave different actions when evaluated again for its state (does its top level "
                "depend on the time or a random number?); reload it (luaflowctl reload)");
    return fresh->code;
}

LoadResult load_workflow_file(const std::string& path, const SandboxOptions& options, const DefCheck& check) {
    std::string name = path.substr(path.find_last_of('/') + 1);
    std::string id = name.size() > 4 && name.compare(name.size() - 4, 4, ".lua") == 0
                         ? name.substr(0, name.size() - 4)
                         : name;
    if (!is_valid_workflow_id(id))
        return LoadError{path, 0, "'" + id + "' is not a valid workflow id (letters, digits, '_', '.', '-')"};
    auto text = read_source_file(path);
    if (!text) return LoadError{path, 0, text.error().message.substr(path.size() + 2)}; // after "PATH: "
    return load_workflow(id, path, *text, options, check);
}

} // namespace luaflow::scripting
