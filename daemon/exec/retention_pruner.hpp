#pragma once
// Runs store::prune_executions at start-up and every hour, a batch per loop turn, and removes the
// pruned executions' scratch directories on the thread pool.
#include "daemon/config/config.hpp"
#include "daemon/store/db.hpp"
#include "loop/uv_handle.hpp"

#include <string>

namespace luaflow::exec {

class RetentionPruner {
  public:
    RetentionPruner(uv_loop_t* loop, store::Db& db, std::string scratch_root);
    void configure(const config::Config& config);
    // Starts a pass now and every hour after.
    void start();

  private:
    void step();

    uv_loop_t* loop_;
    store::Db& db_;
    std::string scratch_root_;
    int days_ = 30;
    int keep_ = 1000;
    loop::Timer hourly_;
    loop::Timer next_batch_;
};

} // namespace luaflow::exec
