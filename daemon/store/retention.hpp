#pragma once
// Pruning of old executions (SPEC 5): finished executions older than `days`, beyond the newest
// `keep_per_workflow` finished ones of each workflow (a queued or running execution is not among the
// kept), go with their actions, logs and events.
#include "common/time_format.hpp"
#include "daemon/store/db.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace luaflow::store {

// One pass over every workflow's executions, a bounded step at a time: a step reads at most `scan`
// executions and deletes at most `batch`, whatever the table's size, so that no loop turn is long (a
// store of 100 000 executions answers its socket meanwhile). Workflow by workflow, oldest first: the
// newest kept finished execution's seq is found once per workflow (an index walk of `keep` rows), then
// a cursor moves through the older ones.
class PrunePass {
  public:
    PrunePass(UnixMillis cutoff, int keep_per_workflow) : cutoff_(cutoff), keep_(keep_per_workflow) {}
    // Deletes what this step finds prunable; returns their ids (their scratch directories go too).
    std::vector<std::string> step(WriteTx& tx, int batch, int scan);
    bool done() const { return done_; }

  private:
    UnixMillis cutoff_;
    int keep_;
    std::optional<std::string> workflow_; // the one being gone through
    std::optional<std::int64_t> below_;   // its executions below this seq may go
    std::int64_t cursor_ = 0;             // its executions up to this seq are done with
    bool done_ = false;
};

// A whole pass at once, at most `batch` executions (tests; the daemon goes step by step).
std::vector<std::string> prune_executions(WriteTx& tx, UnixMillis cutoff, int keep_per_workflow, int batch);

} // namespace luaflow::store
