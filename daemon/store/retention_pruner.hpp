#pragma once
// Runs a PrunePass at start-up and every hour, a step per loop turn, removes the pruned executions'
// scratch directories on the thread pool, then gives the freed pages back to the file system.
#include "daemon/store/db.hpp"
#include "daemon/store/retention.hpp"
#include "loop/uv_handle.hpp"

#include <cstddef>
#include <optional>
#include <string>

namespace luaflow::store {

class RetentionPruner {
  public:
    RetentionPruner(uv_loop_t* loop, Db& db, std::string scratch_root);
    // The config's retention: executions finished more than `days` ago, beyond the newest
    // `keep_per_workflow` of each workflow, go.
    void configure(int days, int keep_per_workflow);
    // Starts a pass now and every hour after.
    void start();

  private:
    void step();
    void give_back();

    uv_loop_t* loop_;
    Db& db_;
    std::string scratch_root_;
    int days_ = 30;
    int keep_ = 1000;
    loop::Timer hourly_;
    loop::Idle stepper_;            // a step of the pass, or of giving pages back, per loop turn
    std::optional<PrunePass> pass_; // the pass under way
    std::size_t pruned_ = 0;
};

} // namespace luaflow::store
