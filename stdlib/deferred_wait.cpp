#include "stdlib/deferred_wait.hpp"

namespace luaflow::stdlib {

DeferredWait::DeferredWait(scripting::Task& task)
    : task_(&task), timer_(task.loop()), alive_(std::make_shared<bool>(true)) {}

std::function<void(Push)> DeferredWait::waker() {
    std::weak_ptr<bool> alive = alive_;
    loop::Timer* timer = &timer_;
    scripting::Task* task = task_;
    // The task owns this wait and the wait owns the timer: while the token lives, both are there.
    return [alive, timer, task](Push push) {
        if (alive.expired()) return;
        timer->start(0, [task, push = std::move(push)] { task->wake(push); });
    };
}

void DeferredWait::cancel() {
    alive_.reset();
    timer_.stop();
}

} // namespace luaflow::stdlib
