#pragma once
// An execution's input checked against the workflow's `input` declarations (SPEC 3, 6).
#include "common/result.hpp"
#include "scripting/workflow_def.hpp"

#include <nlohmann/json.hpp>

namespace luaflow::exec {

// `input` is a JSON object; `strings` holds KEY=VALUE pairs from `-i`, converted to the declared type
// (undeclared: a number if it parses as one, else a string). Fills defaults; refuses missing required
// fields and wrong types with "input field 'count': expected number, got string \"ten\"".
Result<nlohmann::json> check_input(const scripting::WorkflowDef& def, const nlohmann::json& input,
                                   const nlohmann::json& strings);

} // namespace luaflow::exec
