#include "stdlib/stdlib.hpp"

namespace luaflow::stdlib {

namespace {
// Registry keys: the addresses of these are unique to this library.
const char kServicesKey = 0;
const char kWorkflowKey = 0;
} // namespace

const char* to_string(LogLevel level) {
    switch (level) {
    case LogLevel::debug:
        return "debug";
    case LogLevel::info:
        return "info";
    case LogLevel::warn:
        return "warn";
    case LogLevel::error:
        return "error";
    }
    return "info";
}

void install(lua_State* L, int env, Services& services, const std::string& workflow) {
    if (env < 0 && env > LUA_REGISTRYINDEX) env = lua_gettop(L) + env + 1;
    lua_pushlightuserdata(L, const_cast<char*>(&kServicesKey));
    lua_pushlightuserdata(L, &services);
    lua_rawset(L, LUA_REGISTRYINDEX);
    lua_pushlightuserdata(L, const_cast<char*>(&kWorkflowKey));
    lua_pushlstring(L, workflow.data(), workflow.size());
    lua_rawset(L, LUA_REGISTRYINDEX);
    install_log(L, env, services);
    install_json(L, env);
    install_time(L, env);
    install_sleep(L, env);
    install_kv(L, env);
    install_env(L, env);
    install_exec(L, env);
    install_fs(L, env);
    install_http(L, env);
    install_workflows(L, env);
    install_notify(L, env);
}

Services* services_of(lua_State* L) {
    lua_pushlightuserdata(L, const_cast<char*>(&kServicesKey));
    lua_rawget(L, LUA_REGISTRYINDEX);
    auto* s = static_cast<Services*>(lua_touserdata(L, -1));
    lua_pop(L, 1);
    return s;
}

std::string workflow_of(lua_State* L) {
    lua_pushlightuserdata(L, const_cast<char*>(&kWorkflowKey));
    lua_rawget(L, LUA_REGISTRYINDEX);
    std::string w = lua_isstring(L, -1) ? lua_tostring(L, -1) : "";
    lua_pop(L, 1);
    return w;
}

} // namespace luaflow::stdlib
