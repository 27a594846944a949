#pragma once
// Blocking work (file I/O) on libuv's thread pool, with its result handed back on the loop (STYLE 2.4):
// `work` runs on a pool thread and must touch nothing the loop owns; `done` runs on the loop afterwards.
// Once queued, the work cannot be recalled: callers that may go away first give `done` a weak token.
#include "common/result.hpp"

#include <uv.h>

#include <functional>

namespace luaflow::loop {

Result<void> run_in_pool(uv_loop_t* loop, std::function<void()> work, std::function<void()> done);

} // namespace luaflow::loop
