// time.now() -> seconds since the epoch (with milliseconds); time.iso(t) -> RFC 3339 with the local
// offset; time.parse(s) -> seconds, or raises naming the text.
#include "common/time_format.hpp"
#include "stdlib/stdlib.hpp"

#include <cmath>

namespace luaflow::stdlib {

namespace {

int l_time_now(lua_State* L) {
    lua_pushnumber(L, static_cast<double>(now_unix_ms()) / 1000.0);
    return 1;
}

int l_time_iso(lua_State* L) {
    double t = lua_isnoneornil(L, 1) ? static_cast<double>(now_unix_ms()) / 1000.0 : luaL_checknumber(L, 1);
    if (!std::isfinite(t)) return luaL_argerror(L, 1, "time must be a finite number of seconds");
    std::string s = format_rfc3339(static_cast<UnixMillis>(std::llround(t * 1000.0)));
    lua_pushlstring(L, s.data(), s.size());
    return 1;
}

int l_time_parse(lua_State* L) {
    const char* s = luaL_checkstring(L, 1);
    auto t = parse_rfc3339(s);
    if (!t)
        return luaL_error(L, "time.parse: '%s' is not an RFC 3339 time (like 2026-01-05T09:00:00+01:00)", s);
    lua_pushnumber(L, static_cast<double>(*t) / 1000.0);
    return 1;
}

} // namespace

void install_time(lua_State* L, int env) {
    lua_newtable(L);
    lua_pushcfunction(L, l_time_now);
    lua_setfield(L, -2, "now");
    lua_pushcfunction(L, l_time_iso);
    lua_setfield(L, -2, "iso");
    lua_pushcfunction(L, l_time_parse);
    lua_setfield(L, -2, "parse");
    lua_setfield(L, env, "time");
}

} // namespace luaflow::stdlib
