#pragma once
// The documents SPEC 6 shows of an execution, built in one place so that every door (the socket's
// `inspect` and `wait`, `run --wait`, child workflows, the HTTP API) gives the same JSON.
#include "daemon/store/executions.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace luaflow::exec {

// The inspect document of an execution as the store holds it (the row's values are moved into it).
nlohmann::json inspect_document(store::ExecutionRow row);

// The same document as JSON text, exactly inspect_document(find_execution(db, id)).dump(), written out
// row by row: the actions' stored outputs go in as the text they are stored as, and no document of the
// whole is built (a 10 000-action execution: 2.5 MB of text, no 2.5 MB of nodes). Nothing when there
// is no such execution.
std::optional<std::string> inspect_text(store::Db& db, const std::string& id);

} // namespace luaflow::exec
