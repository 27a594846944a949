#include "scripting/task.hpp"

#include "common/loop_thread.hpp"
#include "scripting/convert.hpp"
#include "scripting/sandbox_globals.hpp"

#include <utility>

namespace luaflow::scripting {

namespace {

// A resume runs at most this long before the hook yields it back to the loop.
constexpr std::uint64_t kSliceNs = 2'000'000;
// Preempted tasks resumed per loop turn share this budget, so that I/O waits at most about this long.
constexpr std::uint64_t kTurnBudgetNs = 4'000'000;

std::string error_text(lua_State* co) {
    if (lua_type(co, -1) == LUA_TSTRING) return lua_tostring(co, -1);
    if (lua_isnil(co, -1)) return "error(nil)";
    if (lua_type(co, -1) == LUA_TTABLE) {
        auto j = to_json(co, -1, "error");
        if (j) return j->dump();
    }
    return std::string("error object is a ") + luaL_typename(co, -1);
}

} // namespace

RunQueue::RunQueue(uv_loop_t* loop) : loop_(loop), idle_(loop) {}

RunQueue::~RunQueue() = default;

std::uint64_t RunQueue::add(Task* task) {
    std::uint64_t id = next_id_++;
    tasks_.emplace(id, task);
    return id;
}

void RunQueue::remove(std::uint64_t id) {
    tasks_.erase(id);
}

void RunQueue::make_runnable(std::uint64_t id, bool preempted) {
    (preempted ? preempted_ : runnable_).push_back(id);
    if (!idle_.active()) idle_.start([this] { run_some(); });
}

void RunQueue::defer(std::function<void()> start) {
    if (in_pass_) {
        continuations_.push_back(std::move(start));
        return; // run_some puts them first when the step that deferred them returns
    }
    starts_.push_back(std::move(start));
    if (!idle_.active()) idle_.start([this] { run_some(); });
}

void RunQueue::run_some() {
    std::uint64_t budget_end = uv_hrtime() + kTurnBudgetNs;
    // Round robin: the tasks preempted last pass after those woken or started since. A task started or
    // woken during this pass runs in it too while the budget lasts (an action that ends starts the next
    // one, and both commit in the same turn); one preempted now waits for the next pass.
    runnable_.insert(runnable_.end(), preempted_.begin(), preempted_.end());
    preempted_.clear();
    // The starts a step defers go first, in the order they were deferred.
    auto take_continuations = [this] {
        starts_.insert(starts_.begin(), std::make_move_iterator(continuations_.begin()),
                       std::make_move_iterator(continuations_.end()));
        continuations_.clear();
    };
    in_pass_ = true;
    while ((!runnable_.empty() || !starts_.empty()) && uv_hrtime() < budget_end) {
        if (runnable_.empty()) {
            std::function<void()> start = std::move(starts_.front());
            starts_.pop_front();
            start();
            take_continuations();
            continue;
        }
        std::uint64_t id = runnable_.front();
        runnable_.pop_front();
        auto it = tasks_.find(id);
        if (it == tasks_.end()) continue; // cancelled or finished meanwhile
        Task* task = it->second;
        task->step(std::exchange(task->resume_nargs_, 0));
        take_continuations();
    }
    in_pass_ = false;
    if (runnable_.empty() && preempted_.empty() && starts_.empty()) idle_.stop();
}

Task::Task(std::shared_ptr<LuaState> state, RunQueue& scheduler, TaskLabel label, Done done)
    : state_(std::move(state)), scheduler_(scheduler), label_(std::move(label)), done_(std::move(done)) {
    id_ = scheduler_.add(this);
}

Task::~Task() {
    scheduler_.remove(id_);
    if (wait_) wait_->cancel();
    wait_.reset();
    release_coroutine();
}

void Task::release_coroutine() {
    if (co_) {
        lua_State* co = co_;
        (void)protected_call(state_->L(), [co](lua_State* L) { drop_action_globals(L, co); });
    }
    co_ref_.reset();
    co_ = nullptr;
    // LuaJIT has no emergency collection: after a task that filled the state, collect now, or the next
    // action of the workflow would meet the cap before the incremental collector catches up.
    if (state_->memory_limit() && state_->memory_used() > state_->memory_limit() / 2)
        collect_garbage(*state_);
}

Result<void> Task::start(const LuaRef& fn, const LuaRef& arg, std::uint64_t deadline_ns) {
    deadline_ns_ = deadline_ns;
    auto created = protected_call(state_->L(), [&](lua_State* L) {
        lua_State* co = lua_newthread(L);
        co_ref_ = LuaRef::pop(L); // anchors the coroutine for the task's life (lua-nginx-module co_ref)
        fn.push(L);
        arg.push(L);
        lua_xmove(L, co, 2);
        co_ = co;
    });
    if (!created) return created;
    step(1); // the function is below its argument: resume with one argument
    return {};
}

Task* Task::current(lua_State* L) {
    LuaState* s = LuaState::from(L);
    if (!s) return nullptr;
    auto* t = static_cast<Task*>(s->guard().current_task);
    return t && t->co_ == L ? t : nullptr;
}

void Task::await(std::unique_ptr<Wait> wait) {
    wait_ = std::move(wait);
}

void Task::wake(const std::function<int(lua_State*)>& push) {
    if (finished_ || running_) return;
    wait_.reset(); // the operation is over; its owner part may go now
    // The values go onto the coroutine now (push may refer to the caller's frame); the resume waits its
    // turn in the scheduler, so that thousands of sleeps ending together share the loop's time budget
    // with the socket instead of running in one long turn. They are built on the main thread under
    // protection, since building them may need memory the workflow no longer has, and then moved.
    int n = 0;
    auto pushed = protected_call(state_->L(), [&](lua_State* S) {
        int base = lua_gettop(S);
        n = push(S);
        if (n < 0 || lua_gettop(S) - base != n) luaL_error(S, "a wait handed back a wrong number of values");
        lua_xmove(S, co_, n);
    });
    if (!pushed) {
        // The coroutine cannot be given its result: it ends with the reason when its turn comes.
        wake_failure_ = pushed.error().message;
        n = 0;
    }
    resume_nargs_ = n;
    scheduler_.make_runnable(id_);
}

void Task::cancel() {
    if (finished_) return;
    finished_ = true;
    if (wait_) wait_->cancel();
    wait_.reset();
    scheduler_.remove(id_);
}

void Task::step(int nargs) {
    assert_on_loop_thread();
    if (wake_failure_) {
        std::string reason = std::move(*wake_failure_);
        wake_failure_.reset();
        fail_for_memory("its result could not be handed back (" + reason + ")");
        return;
    }
    RunGuard& g = state_->guard();
    // A task resumed from inside another task's C call would nest resumes; the engine never does that.
    g.task_thread = co_;
    g.current_task = this;
    g.unpaused_since_ns = uv_hrtime();
    g.slice_end_ns = g.unpaused_since_ns + kSliceNs;
    g.deadline_ns = deadline_ns_;
    g.preempted = false;
    g.deadline_hit = false;
    g.stopping = false;
    g.stop_message.clear();
    g.resume_chain.clear();
    g.unyieldable_resumers = 0;
    g.nested_preempted = nullptr;
    state_->clear_memory_exceeded();
    running_ = true;
    int rc = lua_resume(co_, nargs);
    running_ = false;
    bool preempted = g.preempted;
    bool deadline_hit = g.deadline_hit;
    bool stopped = g.stopping;
    bool memory = state_->memory_exceeded();
    g.task_thread = nullptr;
    g.current_task = nullptr;
    g.slice_end_ns = 0;
    g.unpaused_since_ns = 0;
    g.deadline_ns = 0;
    reset_hook(*state_); // the hook may have made itself fire at every instruction

    if (deadline_hit) {
        finish({TaskOutcome::Kind::timed_out, g.deadline_message});
        return;
    }
    if (stopped) {
        // Whatever the code did with the error (a pcall caught it and the action returned), it stands.
        finish({TaskOutcome::Kind::error, g.stop_message});
        return;
    }
    if (rc == LUA_YIELD) {
        if (preempted) {
            scheduler_.make_runnable(id_, true);
        } else if (!wait_) {
            finish({TaskOutcome::Kind::error, "coroutine.yield outside a coroutine: an action may only yield "
                                              "inside coroutines it creates"});
        }
        return;
    }
    if (rc == 0) {
        finish({TaskOutcome::Kind::returned, {}});
        return;
    }
    std::string msg = error_text(co_);
    if (rc == LUA_ERRMEM || memory) {
        fail_for_memory(msg);
        return;
    }
    finish({TaskOutcome::Kind::error, msg});
}

void Task::fail_for_memory(const std::string& why) {
    // What the coroutine holds is garbage now: free it before the daemon reads ctx.node and the next
    // action of the workflow needs room for its ctx.
    release_coroutine();
    finish({TaskOutcome::Kind::memory, "memory limit exceeded (" +
                                           std::to_string(state_->memory_limit() >> 20) +
                                           " MiB per workflow): " + why});
}

void Task::finish(TaskOutcome outcome) {
    finished_ = true;
    scheduler_.remove(id_);
    if (wait_) wait_->cancel();
    wait_.reset();
    // The action's globals go now, before its result is reported and the next action starts (the
    // results are on the coroutine's stack, which stays): what they hold is free for it.
    if (co_) {
        lua_State* co = co_;
        (void)protected_call(state_->L(), [co](lua_State* L) { drop_action_globals(L, co); });
        if (state_->memory_limit() && state_->memory_used() > state_->memory_limit() / 2)
            collect_garbage(*state_);
    }
    // done may destroy this task: nothing touches `this` after the call.
    Done done = std::move(done_);
    if (done) done(*this, outcome);
}

} // namespace luaflow::scripting
