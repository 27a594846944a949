#pragma once
// The sandbox's own versions of the functions that call the Lua values they are given (pcall, xpcall,
// tostring, table.sort) and of coroutine.resume/wrap, which pass preemption up to the action (SPEC 3).
#include <lua.hpp>

namespace luaflow::scripting {

// Replaces those functions in the sandbox table at `env` (and in its table and coroutine libraries).
// Runs at state creation, inside its protected set-up.
void install_sandbox_wrappers(lua_State* L, int env);

} // namespace luaflow::scripting
