#pragma once
// Blocking work (file I/O) on libuv's thread pool, with its result handed back on the loop (STYLE 2.4):
// `work` runs on a pool thread and must touch nothing the loop owns; `done` runs on the loop afterwards.
// Once a thread has taken the work, it cannot be recalled: callers that may go away first give `done` a
// weak token.
#include "common/result.hpp"

#include <uv.h>

#include <functional>
#include <memory>

namespace luaflow::loop {

struct PoolJob;

// What run_in_pool gives back: a queued job that is still waiting for a thread can be taken back.
class PoolTicket {
  public:
    PoolTicket() = default;
    explicit PoolTicket(std::weak_ptr<PoolJob> job) : job_(std::move(job)) {}
    // Takes the work back if no thread has started it (uv_cancel); `done` does not run either way. Work
    // that has started finishes on its thread, and its `done` is dropped unrun.
    void cancel();

  private:
    std::weak_ptr<PoolJob> job_;
};

[[nodiscard]] Result<PoolTicket> run_in_pool(uv_loop_t* loop, std::function<void()> work,
                                             std::function<void()> done);

} // namespace luaflow::loop
