// env(name): a variable the config passes (env.pass) or a secret it names (env.secrets); nil otherwise.
// The daemon keeps secrets' values out of logs, outputs and the shared context (daemon/exec/secrets.cpp).
#include "stdlib/stdlib.hpp"

namespace luaflow::stdlib {

namespace {

int l_env(lua_State* L) {
    if (lua_gettop(L) != 1 || lua_type(L, 1) != LUA_TSTRING)
        return luaL_error(L, "env: expected a variable name (a string), got %s", luaL_typename(L, 1));
    Services* services = services_of(L);
    auto value = services ? services->env_var(lua_tostring(L, 1)) : std::nullopt;
    if (!value)
        lua_pushnil(L);
    else
        lua_pushlstring(L, value->data(), value->size());
    return 1;
}

} // namespace

void install_env(lua_State* L, int env) {
    lua_pushcfunction(L, l_env);
    lua_setfield(L, env, "env");
}

} // namespace luaflow::stdlib
