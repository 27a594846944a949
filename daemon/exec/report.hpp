#pragma once
// The documents SPEC 6 shows of an execution, built in one place so that every door (the socket's
// `inspect` and `wait`, `run --wait`, child workflows, the HTTP API) gives the same JSON.
#include "daemon/store/executions.hpp"

#include <nlohmann/json.hpp>

namespace luaflow::exec {

// The inspect document of an execution as the store holds it (the row's values are moved into it).
nlohmann::json inspect_document(store::ExecutionRow row);

} // namespace luaflow::exec
