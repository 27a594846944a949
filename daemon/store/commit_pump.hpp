#pragma once
// Commits the turn's changes before the loop polls again, then runs what waited for them.
// A uv_prepare handle runs just before libuv blocks for I/O; while work remains (a callback wrote
// again) a uv_idle handle keeps the poll from blocking, so the next turn commits it.
#include "daemon/store/db.hpp"
#include "loop/uv_handle.hpp"

namespace luaflow::store {

class CommitPump {
  public:
    CommitPump(uv_loop_t* loop, Db& db);
    ~CommitPump();
    CommitPump(const CommitPump&) = delete;
    CommitPump& operator=(const CommitPump&) = delete;

  private:
    void on_prepare();
    void arm();

    Db& db_;
    loop::Prepare prepare_; // commits before the loop blocks
    loop::Idle idle_;       // active while work remains: the next poll does not block
};

} // namespace luaflow::store
