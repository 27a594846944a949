#pragma once
// Lua <-> JSON in one place (STYLE 2.9). Errors name the path: "output.items[3]: cannot encode a function".
#include "common/result.hpp"

#include <lua.hpp>
#include <nlohmann/json.hpp>
#include <string>

namespace luaflow::scripting {

// Converts the value at `idx`. Tables with keys 1..n are arrays, other tables objects (number keys
// become strings); an empty table is [] unless it carries the object marker set by push_json.
// Functions, userdata, threads, NaN/inf, cycles and nesting deeper than 200 are errors naming `path`.
Result<nlohmann::json> to_json(lua_State* L, int idx, const std::string& path);

// Pushes a Lua value for `value`. Empty objects/arrays get a marker metatable so that they encode back
// as they came. May raise a Lua error (memory): call it inside protected_call or a lua_CFunction.
void push_json(lua_State* L, const nlohmann::json& value);

} // namespace luaflow::scripting
