// log.debug/info/warn/error(fmt, ...): a line in the job's log (SPEC 3). With more than one argument
// the first is a string.format pattern.
#include "stdlib/stdlib.hpp"

namespace luaflow::stdlib {

namespace {

template <LogLevel level> int l_log(lua_State* L) {
    auto* services = static_cast<Services*>(lua_touserdata(L, lua_upvalueindex(1)));
    int n = lua_gettop(L);
    if (n == 0) return luaL_error(L, "log.%s: expected a message", to_string(level));
    std::string line;
    if (n == 1) {
        // tostring() so that log.info(42) or log.info(tbl) works like print.
        lua_getglobal(L, "tostring");
        lua_pushvalue(L, 1);
        lua_call(L, 1, 1);
        size_t len = 0;
        const char* s = lua_tolstring(L, -1, &len);
        line.assign(s ? s : "", len);
    } else {
        luaL_checkstring(L, 1);
        lua_getglobal(L, "string");
        lua_getfield(L, -1, "format");
        lua_insert(L, 1);
        lua_pop(L, 1);
        lua_call(L, n, 1);
        size_t len = 0;
        const char* s = lua_tolstring(L, -1, &len);
        line.assign(s ? s : "", len);
    }
    services->log_line(scripting::Task::current(L), workflow_of(L), level, line);
    return 0;
}

} // namespace

void install_log(lua_State* L, int env, Services& services) {
    lua_newtable(L);
    auto add = [&](const char* name, lua_CFunction fn) {
        lua_pushlightuserdata(L, &services);
        lua_pushcclosure(L, fn, 1);
        lua_setfield(L, -2, name);
    };
    add("debug", l_log<LogLevel::debug>);
    add("info", l_log<LogLevel::info>);
    add("warn", l_log<LogLevel::warn>);
    add("error", l_log<LogLevel::error>);
    lua_setfield(L, env, "log");
}

} // namespace luaflow::stdlib
