#pragma once
// The sandbox's string.find, string.match, string.gmatch and string.gsub: Lua 5.1 patterns on a matcher
// with a work budget and a recursion cap (scripting/pattern_matcher.hpp), so that no pattern can hold
// the loop past the 250 ms an action may run without a pause point, or past its deadline (SPEC 3,
// issue 14 item 6); and gsub callbacks nested at most kMaxNestedCallbacks deep (issue 14 item 8).
#include <lua.hpp>

namespace luaflow::scripting {

// How deep gsub's function and table replacements may nest (a callback that calls gsub again): each
// level holds C stack, and LuaJIT sets no limit of its own there.
constexpr int kMaxNestedCallbacks = 200;

// Replaces find, match, gmatch (and gfind, if present) and gsub in the string table at index
// `string_table`: the state's real string table, which is also the string metatable's __index.
void install_bounded_patterns(lua_State* L, int string_table);

} // namespace luaflow::scripting
