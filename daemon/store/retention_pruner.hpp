#pragma once
// Runs a PrunePass at start-up and every hour, a step per loop turn, removes the pruned executions'
// scratch directories on the thread pool, then gives the freed pages back to the file system.
//
// It is background work, and gives way to the WAL's checkpoint (Checkpointer): while one is out it
// writes nothing. Its deletions would otherwise grow the WAL under the checkpoint, which then holds the
// commits longer to catch up, and every answer of the socket waits for that commit (issue 19: the
// socket's status round trip reached 27 ms during a pass over 100 000 executions).
#include "daemon/store/db.hpp"
#include "daemon/store/retention.hpp"
#include "loop/uv_handle.hpp"

#include <cstddef>
#include <functional>
#include <optional>
#include <string>

namespace luaflow::store {

class RetentionPruner {
  public:
    // `store_busy`: a checkpoint is out (Checkpointer::busy); null: never.
    RetentionPruner(uv_loop_t* loop, Db& db, std::string scratch_root, std::function<bool()> store_busy = {});
    // The config's retention: executions finished more than `days` ago, beyond the newest
    // `keep_per_workflow` of each workflow, go.
    void configure(int days, int keep_per_workflow);
    // Starts a pass now and every hour after.
    void start();

  private:
    void step();
    void give_back();
    // False, with the work paused for a few milliseconds, while a checkpoint is out.
    bool store_free(void (RetentionPruner::*resume)());

    uv_loop_t* loop_;
    Db& db_;
    std::string scratch_root_;
    int days_ = 30;
    int keep_ = 1000;
    std::function<bool()> store_busy_;
    loop::Timer hourly_;
    loop::Idle stepper_;            // a step of the pass, or of giving pages back, per loop turn
    loop::Timer paused_;            // waits out a checkpoint
    std::optional<PrunePass> pass_; // the pass under way
    std::size_t pruned_ = 0;
};

} // namespace luaflow::store
