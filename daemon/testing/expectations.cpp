#include "daemon/testing/expectations.hpp"

#include <lua.hpp>

#include <memory>

namespace luaflow::testing {

using nlohmann::json;

namespace {

std::string shown(const json& v) {
    if (v.is_null()) return "nothing";
    std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
    constexpr std::size_t kMax = 200;
    if (s.size() > kMax) s = s.substr(0, kMax) + "...";
    return s;
}

// Lua's own string.find with a pattern the test's author wrote: 1 match, 0 none, -1 a bad pattern
// (its message in `why`).
int lua_pattern_finds(const std::string& subject, const std::string& pattern, std::string& why) {
    std::unique_ptr<lua_State, void (*)(lua_State*)> owner(luaL_newstate(), lua_close);
    lua_State* L = owner.get();
    if (!L) {
        why = "out of memory";
        return -1;
    }
    luaL_openlibs(L);
    lua_getglobal(L, "string");
    lua_getfield(L, -1, "find");
    lua_pushlstring(L, subject.data(), subject.size());
    lua_pushlstring(L, pattern.data(), pattern.size());
    if (lua_pcall(L, 2, 1, 0) != 0) {
        why = lua_isstring(L, -1) ? lua_tostring(L, -1) : "bad pattern";
        return -1;
    }
    return lua_isnil(L, -1) ? 0 : 1;
}

} // namespace

std::optional<std::string> first_mismatch(const json& want, const json& got, const std::string& path) {
    if (want.is_object() || (want.is_array() && want.empty())) {
        if (!got.is_object() && !got.is_array()) return path + ": want a table, got " + shown(got);
        if (want.is_array()) return std::nullopt; // an empty table lists nothing to match
        if (!got.is_object()) return path + ": want a table with keys, got " + shown(got);
        for (auto it = want.begin(); it != want.end(); ++it) {
            auto g = got.find(it.key());
            std::string sub = path + "." + it.key();
            if (g == got.end()) return sub + ": want " + shown(it.value()) + ", got nothing";
            if (auto m = first_mismatch(it.value(), *g, sub)) return m;
        }
        return std::nullopt;
    }
    if (want.is_array()) {
        if (!got.is_array()) return path + ": want " + shown(want) + ", got " + shown(got);
        if (got.size() != want.size())
            return path + ": want " + std::to_string(want.size()) + " items, got " +
                   std::to_string(got.size()) + " (" + shown(got) + ")";
        for (std::size_t i = 0; i < want.size(); ++i)
            if (auto m = first_mismatch(want[i], got[i], path + "[" + std::to_string(i + 1) + "]")) return m;
        return std::nullopt;
    }
    if (want.is_number() && got.is_number()) {
        if (want.get<double>() == got.get<double>()) return std::nullopt;
    } else if (want == got) {
        return std::nullopt;
    }
    return path + ": want " + shown(want) + ", got " + shown(got);
}

std::vector<std::string> check_expectations(const json& expect, const json& report,
                                            const std::vector<std::string>& logs) {
    std::vector<std::string> failures;
    if (!report.is_object()) {
        failures.push_back("the execution did not run");
        return failures;
    }
    const json& actions = report.contains("actions") ? report["actions"] : json::object();
    std::string status = report.value("status", "");
    std::string error =
        report.contains("error") && report["error"].is_string() ? report["error"].get<std::string>() : "";
    // Without `status`, a case expects success: a failing run is never a pass by omission.
    std::string want_status = expect.value("status", "succeeded");
    if (status != want_status) {
        std::string f = "status: want \"" + want_status + "\", got \"" + status + "\"";
        if (!error.empty()) f += " (" + error + ")";
        failures.push_back(f);
    }
    if (expect.contains("outputs")) {
        for (auto it = expect["outputs"].begin(); it != expect["outputs"].end(); ++it) {
            std::string path = "outputs." + it.key();
            auto a = actions.find(it.key());
            if (a == actions.end()) {
                failures.push_back(path + ": the workflow has no action '" + it.key() + "'");
                continue;
            }
            std::string astatus = a->value("status", "");
            if (astatus != "succeeded") {
                failures.push_back(path + ": want " + shown(it.value()) + ", got nothing (the action " +
                                   astatus + ")");
                continue;
            }
            if (auto m = first_mismatch(it.value(), a->contains("output") ? (*a)["output"] : json(), path))
                failures.push_back(*m);
        }
    }
    if (expect.contains("actions")) {
        for (auto it = expect["actions"].begin(); it != expect["actions"].end(); ++it) {
            auto a = actions.find(it.key());
            std::string path = "actions." + it.key();
            if (a == actions.end()) {
                failures.push_back(path + ": the workflow has no action '" + it.key() + "'");
                continue;
            }
            std::string got = a->value("status", "");
            if (got != it.value().get<std::string>()) {
                std::string f =
                    path + ": want \"" + it.value().get<std::string>() + "\", got \"" + got + "\"";
                if (a->contains("error") && (*a)["error"].is_string())
                    f += " (" + (*a)["error"].get<std::string>() + ")";
                failures.push_back(f);
            }
        }
    }
    if (expect.contains("error")) {
        // The execution's error says which action failed ("action 'check' failed"); the why is the
        // action's own error, which the pattern may match as well.
        std::vector<std::string> texts;
        if (!error.empty()) texts.push_back(error);
        for (auto it = actions.begin(); it != actions.end(); ++it)
            if (it->contains("error") && (*it)["error"].is_string()) texts.push_back((*it)["error"]);
        std::string pattern = expect["error"];
        std::string why;
        bool found = false, bad = false;
        for (const std::string& t : texts) {
            int r = lua_pattern_finds(t, pattern, why);
            bad = r < 0;
            if (r != 0) {
                found = r > 0;
                break;
            }
        }
        if (bad)
            failures.push_back("error: the pattern \"" + pattern + "\" is not a Lua pattern: " + why);
        else if (texts.empty())
            failures.push_back("error: want one matching \"" + pattern + "\", got none");
        else if (!found)
            failures.push_back("error: want one matching \"" + pattern + "\", got \"" + texts[0] + "\"" +
                               (texts.size() > 1
                                    ? " (and " + std::to_string(texts.size() - 1) + " action errors)"
                                    : std::string()));
    }
    if (expect.contains("logs")) {
        for (const json& want : expect["logs"]) {
            const std::string& text = want.get_ref<const std::string&>();
            bool seen = false;
            for (const std::string& line : logs)
                if (line.find(text) != std::string::npos) {
                    seen = true;
                    break;
                }
            if (!seen)
                failures.push_back("logs: no line contains \"" + text + "\" (" + std::to_string(logs.size()) +
                                   " lines)");
        }
    }
    return failures;
}

} // namespace luaflow::testing
