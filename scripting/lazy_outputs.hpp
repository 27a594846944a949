#pragma once
// ctx.outputs as a view that converts an action's output to Lua when it is first read (issue 8, item
// 9): with thousands of actions in one execution, each one used to get its own copy of every finished
// output, which took time and memory quadratic in their number. One immutable snapshot of the outputs is
// shared by the attempts that start while it holds; each view converts only what its action reads, and
// keeps it (so the action may change its copy, as before, without another seeing it).
#include "scripting/outputs_log.hpp"

#include <lua.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

namespace luaflow::scripting {

// Pushes a view of the first `seen` entries of `outputs`. Raises on out of memory.
void push_lazy_outputs(lua_State* L, std::shared_ptr<const OutputsLog> outputs, std::size_t seen);

// When the table at idx is such a view, converts every output it has not converted yet, so that it can
// be listed (pairs, JSON encoding). Raises on out of memory.
void materialize_if_lazy(lua_State* L, int idx);

// The outputs the view at idx stands for, as one object, while it has not converted them all; nothing
// for any other table. Never raises.
std::optional<nlohmann::json> lazy_outputs_unread(lua_State* L, int idx);

} // namespace luaflow::scripting
