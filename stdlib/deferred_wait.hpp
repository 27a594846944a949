#pragma once
// A wait on an operation that reports from a place where a task must not be resumed (inside the store's
// commit, STYLE 2.5 rule 5) and whose callback cannot be taken back. The callback holds only a weak
// token: a cancelled wait (timeout, cancel) drops it, and a late report finds nothing. Otherwise the
// task is resumed from a 0 ms timer, at the top of a libuv callback.
#include "loop/uv_handle.hpp"
#include "scripting/task.hpp"

#include <functional>
#include <memory>

namespace luaflow::stdlib {

using Push = std::function<int(lua_State*)>;

class DeferredWait final : public scripting::Wait {
  public:
    explicit DeferredWait(scripting::Task& task);
    // What the operation calls with the values for the task (pushed when it resumes). May be called at
    // once, before the task has yielded: the resume still comes from the timer.
    std::function<void(Push)> waker();
    void cancel() override;

  private:
    scripting::Task* task_;
    loop::Timer timer_;
    std::shared_ptr<bool> alive_;
};

} // namespace luaflow::stdlib
