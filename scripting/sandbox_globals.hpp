#pragma once
// Each action's globals are its own, over a read-only sandbox (SPEC 3): the libraries are read-only
// proxies, the names the sandbox and the workflow file define cannot be assigned at run time, and a
// global an action sets lives in a table of its own, gone when the action ends.
#include <lua.hpp>

namespace luaflow::scripting {

// At state creation: `base` is the sandbox (libraries and standard library), `globals` the empty table
// code sees as its globals; the file's definitions go into it while it loads.
void install_sandbox_globals(lua_State* L, int base, int globals);

// After the workflow file has loaded: its globals join the base, and from then on a global write goes
// to the running action's own table (an error outside an action, or for a name the base defines).
void seal_globals(lua_State* L);

// Drops the globals the action running on `co` set (when its coroutine is released): at once, not
// when the collector finds the coroutine gone, so that what they hold is free for the next action.
void drop_action_globals(lua_State* L, lua_State* co);

} // namespace luaflow::scripting
