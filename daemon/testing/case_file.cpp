#include "daemon/testing/case_file.hpp"

#include "scripting/convert.hpp"

#include <lua.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>

namespace luaflow::testing {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kTestsKey = "luaflow.tests";

// tests { ... }: hands its table back, noted as the one the file must return.
int l_tests(lua_State* L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_pushvalue(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, kTestsKey);
    return 1;
}

// The line of the `tests {` call, which the errors about its cases name. Not from the debug interface:
// `return tests { ... }` is a tail call, whose caller's frame is gone by then.
int line_of_tests_call(const std::string& path) {
    std::ifstream in(path);
    std::string text;
    for (int line = 1; std::getline(in, text); ++line) {
        std::size_t code_end = text.find("--");
        for (std::size_t at = text.find("tests"); at != std::string::npos && at < code_end;
             at = text.find("tests", at + 1)) {
            bool starts =
                at == 0 || !(std::isalnum(static_cast<unsigned char>(text[at - 1])) || text[at - 1] == '_');
            std::size_t next = text.find_first_not_of(" \t", at + 5);
            if (starts && next != std::string::npos && (text[next] == '{' || text[next] == '(')) return line;
        }
    }
    return 0;
}

// The environment of a case file: what computes values, nothing that acts.
void push_environment(lua_State* L) {
    lua_newtable(L);
    for (const char* name : {"assert", "error", "ipairs", "next", "pairs", "pcall", "select", "tonumber",
                             "tostring", "type", "unpack", "string", "table", "math"}) {
        lua_getglobal(L, name);
        lua_setfield(L, -2, name);
    }
    lua_newtable(L);
    for (const char* name : {"time", "date"}) {
        lua_getglobal(L, "os");
        lua_getfield(L, -1, name);
        lua_remove(L, -2);
        lua_setfield(L, -2, name);
    }
    lua_setfield(L, -2, "os");
    lua_pushcfunction(L, l_tests);
    lua_setfield(L, -2, "tests");
}

struct LuaClose {
    void operator()(lua_State* L) const { lua_close(L); }
};

std::string describe(const json& v) {
    switch (v.type()) {
    case json::value_t::object:
        return "a table";
    case json::value_t::array:
        return "a list";
    case json::value_t::string:
        return "a string";
    case json::value_t::boolean:
        return "a boolean";
    case json::value_t::null:
        return "nil";
    default:
        return "a number";
    }
}

// One case from its JSON form; the message says what is wrong with it.
std::optional<std::string> read_case(const json& c, TestCase& out) {
    static const std::set<std::string> known = {"name", "workflow", "input", "mocks", "at", "fast", "expect"};
    if (!c.is_object()) return "a case must be a table, not " + describe(c);
    for (auto it = c.begin(); it != c.end(); ++it)
        if (!known.count(it.key()))
            return "unknown field '" + it.key() +
                   "' (a case has name, workflow, input, mocks, at, fast, expect)";
    if (!c.contains("workflow") || !c["workflow"].is_string() || c["workflow"].get<std::string>().empty())
        return "'workflow' must name the workflow to run";
    out.workflow = c["workflow"];
    if (c.contains("name")) {
        if (!c["name"].is_string()) return "'name' must be a string, not " + describe(c["name"]);
        out.name = c["name"];
    }
    if (c.contains("input")) {
        const json& in = c["input"];
        if (in.is_array() && in.empty()) {
            out.input = json::object();
        } else if (!in.is_object()) {
            return "'input' must be a table of inputs, not " + describe(in);
        } else {
            out.input = in;
        }
    }
    if (c.contains("mocks")) {
        const json& m = c["mocks"];
        if (!m.is_object() && !(m.is_array() && m.empty()))
            return "'mocks' must be a table of action = output, not " + describe(m);
        for (auto it = m.begin(); m.is_object() && it != m.end(); ++it)
            out.mocks[it.key()] = mock_from(it.value());
    }
    if (c.contains("at")) {
        if (!c["at"].is_string()) return "'at' must be an RFC 3339 time, not " + describe(c["at"]);
        out.at = parse_rfc3339(c["at"].get<std::string>());
        if (!out.at)
            return "'at' is not an RFC 3339 time (like 2026-03-29T02:30:00+01:00): " +
                   c["at"].get<std::string>();
    }
    if (c.contains("fast")) {
        if (!c["fast"].is_boolean()) return "'fast' must be true or false, not " + describe(c["fast"]);
        out.fast = c["fast"];
    }
    if (c.contains("expect")) {
        json e = c["expect"];
        if (e.is_array() && e.empty()) return std::nullopt;
        if (!e.is_object()) return "'expect' must be a table, not " + describe(e);
        // An empty Lua table reads as an empty list; here it can only mean "no entries".
        for (const char* k : {"outputs", "actions"})
            if (e.contains(k) && e[k].is_array() && e[k].empty()) e[k] = json::object();
        static const std::set<std::string> kinds = {"status", "outputs", "actions", "error", "logs"};
        for (auto it = e.begin(); it != e.end(); ++it)
            if (!kinds.count(it.key()))
                return "unknown expectation 'expect." + it.key() +
                       "' (there are status, outputs, actions, error, logs)";
        if (e.contains("status") && !e["status"].is_string())
            return "'expect.status' must be a string, not " + describe(e["status"]);
        if (e.contains("error") && !e["error"].is_string())
            return "'expect.error' must be a Lua pattern, not " + describe(e["error"]);
        if (e.contains("outputs") && !e["outputs"].is_object())
            return "'expect.outputs' must be a table of action = output, not " + describe(e["outputs"]);
        if (e.contains("actions")) {
            if (!e["actions"].is_object())
                return "'expect.actions' must be a table of action = status, not " + describe(e["actions"]);
            for (auto it = e["actions"].begin(); it != e["actions"].end(); ++it)
                if (!it.value().is_string())
                    return "'expect.actions." + it.key() + "' must be a status, not " + describe(it.value());
        }
        if (e.contains("logs")) {
            const json& l = e["logs"];
            bool ok = l.is_string() || l.is_array();
            for (const json& x : l.is_array() ? l : json::array())
                ok = ok && x.is_string();
            if (!ok) return "'expect.logs' must be a list of strings";
        }
        out.expect = e;
        if (out.expect.contains("logs") && out.expect["logs"].is_string())
            out.expect["logs"] = json::array({out.expect["logs"]});
    }
    return std::nullopt;
}

} // namespace

MockSpec mock_from(const json& value) {
    MockSpec m;
    if (value.is_string() && value.get<std::string>().rfind("error:", 0) == 0)
        m.error = value.get<std::string>().substr(6);
    else
        m.output = value;
    return m;
}

std::variant<std::vector<TestCase>, CaseFileError> read_case_file(const std::string& path) {
    std::unique_ptr<lua_State, LuaClose> owner(luaL_newstate());
    lua_State* L = owner.get();
    if (!L) return CaseFileError{path, 0, "out of memory"};
    luaL_openlibs(L);
    auto fail_from_lua = [&](int line_if_unknown) -> CaseFileError {
        // Lua's own messages start with "path:line: ".
        std::string msg = lua_isstring(L, -1) ? lua_tostring(L, -1) : "an error that is not a string";
        std::string prefix = path + ":";
        int line = line_if_unknown;
        if (msg.rfind(prefix, 0) == 0) {
            std::size_t colon = msg.find(':', prefix.size());
            if (colon != std::string::npos) {
                line = std::atoi(msg.substr(prefix.size(), colon - prefix.size()).c_str());
                msg = msg.substr(colon + 1);
                if (!msg.empty() && msg[0] == ' ') msg.erase(0, 1);
            }
        }
        return CaseFileError{path, line, msg};
    };
    if (luaL_loadfile(L, path.c_str()) != 0) return fail_from_lua(0);
    push_environment(L);
    lua_setfenv(L, -2);
    if (lua_pcall(L, 0, 1, 0) != 0) return fail_from_lua(0);
    int line = line_of_tests_call(path);
    lua_getfield(L, LUA_REGISTRYINDEX, kTestsKey);
    bool from_tests = lua_istable(L, -2) && lua_rawequal(L, -1, -2);
    lua_pop(L, 1);
    if (!from_tests) return CaseFileError{path, line, "the file must return tests { case, ... }"};
    auto all = scripting::to_json(L, -1, "tests");
    if (!all) return CaseFileError{path, line, all.error().message};
    if (!all->is_array())
        return CaseFileError{path, line, "tests { ... } takes a list of cases, each a table"};
    std::vector<TestCase> cases;
    for (std::size_t i = 0; i < all->size(); ++i) {
        TestCase c;
        c.file = path;
        c.line = line;
        if (auto why = read_case((*all)[i], c))
            return CaseFileError{path, line, "case " + std::to_string(i + 1) + ": " + *why};
        if (c.name.empty()) c.name = "case " + std::to_string(i + 1);
        cases.push_back(std::move(c));
    }
    return cases;
}

std::vector<std::string> case_files(const std::string& workflows_dir) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(fs::path(workflows_dir) / "tests", ec)) {
        std::string name = entry.path().filename().string();
        const std::string suffix = ".test.lua";
        if (name.size() > suffix.size() &&
            name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
            out.push_back(entry.path().string());
    }
    std::sort(out.begin(), out.end());
    return out;
}

} // namespace luaflow::testing
