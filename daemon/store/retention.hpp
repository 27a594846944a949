#pragma once
// Pruning of old executions (SPEC 5): finished executions older than `days`, beyond the newest
// `keep_per_workflow` finished ones of each workflow (a queued or running execution is not among the
// kept), go with their actions and logs.
#include "common/time_format.hpp"
#include "daemon/store/db.hpp"

#include <string>
#include <vector>

namespace luaflow::store {

// Deletes at most `batch` prunable executions finished before `cutoff`; returns their ids (so their
// scratch directories can go too). Called in batches across loop turns: a long delete never holds the loop.
std::vector<std::string> prune_executions(WriteTx& tx, UnixMillis cutoff, int keep_per_workflow, int batch);

} // namespace luaflow::store
