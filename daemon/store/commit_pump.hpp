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
    struct PrepareBox {
        uv_prepare_t uv;
        bool closing = false;
        CommitPump* pump = nullptr;
    };
    struct IdleBox {
        uv_idle_t uv;
        bool closing = false;
    };
    void on_prepare();
    void arm();

    Db& db_;
    loop::UvHandle<PrepareBox> prepare_;
    loop::UvHandle<IdleBox> idle_;
};

} // namespace luaflow::store
