#pragma once
// Runs store::prune_executions at start-up and every hour, a batch per loop turn, and removes the
// pruned executions' scratch directories on the thread pool.
#include "daemon/store/db.hpp"
#include "loop/uv_handle.hpp"

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
    loop::Timer next_batch_;
};

} // namespace luaflow::store
