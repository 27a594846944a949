#pragma once
// Installs the Lua standard library (SPEC 3) into a sandbox table.
#include "stdlib/services.hpp"

#include <lua.hpp>

#include <string>

namespace luaflow::stdlib {

// Adds the standard library (log, json, time, sleep, kv, env, fs, http, exec, workflows, notify) to the table
// at `env`. `workflow` names the state's workflow in daemon-log lines written at load time. `services` must
// outlive the state.
void install(lua_State* L, int env, Services& services, const std::string& workflow);

// Each global's installer; one file each.
void install_log(lua_State* L, int env, Services& services);
void install_json(lua_State* L, int env);
void install_time(lua_State* L, int env);
void install_sleep(lua_State* L, int env);
void install_kv(lua_State* L, int env);
void install_env(lua_State* L, int env);
void install_exec(lua_State* L, int env);
void install_fs(lua_State* L, int env);
void install_http(lua_State* L, int env);
void install_workflows(lua_State* L, int env);
void install_notify(lua_State* L, int env);

// The Services registered for a state (install() keeps it in the registry).
Services* services_of(lua_State* L);
// The workflow id the state was installed for.
std::string workflow_of(lua_State* L);

} // namespace luaflow::stdlib
