#pragma once
// The coroutine bridge (STYLE 2.5): one Task runs one Lua function as a coroutine on the loop thread.
// Only this file calls lua_resume. A task runs until it returns, fails, waits on an operation (a Wait
// it owns), or uses up its time slice; a preempted task goes back to the RunQueue, which
// resumes runnable tasks a few milliseconds per loop turn, so the loop keeps answering.
#include "common/result.hpp"
#include "loop/uv_handle.hpp"
#include "scripting/lua_ref.hpp"
#include "scripting/lua_state.hpp"

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace luaflow::scripting {

// An operation a task waits on (a timer, a request, a child). Owned by the task; cancel() stops it so
// that its callback will not resume anything.
class Wait {
  public:
    virtual ~Wait() = default;
    virtual void cancel() = 0;
};

struct TaskOutcome {
    enum class Kind { returned, error, timed_out, memory };
    Kind kind = Kind::returned;
    std::string message; // for everything but `returned`
};

// Who the task works for; read by the standard library (log lines name the execution and action).
struct TaskLabel {
    std::string workflow;
    std::string execution;
    std::string action;
    int attempt = 0;
    std::string scratch; // the job's scratch directory (ctx.scratch); relative fs.* paths resolve in it
};

class Task;

// The runnable tasks, resumed round robin, a slice each, a turn's budget at a time (a run queue, as a
// kernel's: the schedules of workflows are daemon/schedule's).
class RunQueue {
  public:
    explicit RunQueue(uv_loop_t* loop);
    ~RunQueue();
    RunQueue(const RunQueue&) = delete;
    RunQueue& operator=(const RunQueue&) = delete;

    uv_loop_t* loop() const { return loop_; }
    std::size_t runnable() const { return runnable_.size() + preempted_.size() + starts_.size(); }
    // Runs `start` at the next pass, in turn with the runnable tasks (a new task's first step): what a
    // task needs (its ctx, its coroutine) is made only when its turn comes, so that thousands waiting
    // for their turn hold nothing in the state. A start deferred by what runs in a pass (an action that
    // ends starts its dependents) goes before those already waiting: an execution under way finishes
    // before new ones begin, and its chain commits in one turn.
    void defer(std::function<void()> start);

  private:
    friend class Task;
    std::uint64_t add(Task* task);
    void remove(std::uint64_t id);
    // `preempted`: it used up its slice; it waits for the next pass, so that a task that computes gets
    // one slice per turn and the loop's I/O comes in between.
    void make_runnable(std::uint64_t id, bool preempted = false);
    void run_some();

    uv_loop_t* loop_;
    loop::Idle idle_; // runs run_some at every turn while a task is runnable
    std::uint64_t next_id_ = 1;
    std::unordered_map<std::uint64_t, Task*> tasks_;
    std::deque<std::uint64_t> runnable_;
    std::deque<std::uint64_t> preempted_; // for the next pass
    std::deque<std::function<void()>> starts_;
    bool in_pass_ = false;
    std::vector<std::function<void()>> continuations_; // deferred during the current step, in order
};

class Task {
  public:
    // Called once when the task ends (not after cancel()). For `returned`, the function's results are
    // on results_thread() from index 1 to lua_gettop(). The task may be destroyed inside the callback.
    using Done = std::function<void(Task&, const TaskOutcome&)>;

    Task(std::shared_ptr<LuaState> state, RunQueue& scheduler, TaskLabel label, Done done);
    ~Task();
    Task(const Task&) = delete;
    Task& operator=(const Task&) = delete;

    // Runs fn(arg) now, until its first wait, slice end or return (a caller that starts thousands
    // together spreads them over turns with RunQueue::defer). `deadline_ns` (uv_hrtime, 0 = none) stops code
    // that loops without waiting; a timer of the caller handles a deadline met while waiting. Fails (without
    // calling done) only when the coroutine cannot be created (memory).
    Result<void> start(const LuaRef& fn, const LuaRef& arg, std::uint64_t deadline_ns);

    // The task whose coroutine is L and is running now; nullptr outside an action coroutine.
    static Task* current(lua_State* L);
    // Called by a waiting library function right before `return lua_yield(L, 0)`.
    void await(std::unique_ptr<Wait> wait);
    // Resumes a waiting task with the values `push` leaves on the coroutine (it returns how many): push
    // runs now, the resume on the scheduler's next run (within the loop's per-turn budget).
    // Call only from the top of a libuv callback (STYLE 2.5 rule 5).
    void wake(const std::function<int(lua_State*)>& push);
    // Stops the task: cancels its wait and drops the coroutine. `done` is not called.
    void cancel();

    lua_State* results_thread() const { return co_; }
    LuaState& state() const { return *state_; }
    const TaskLabel& label() const { return label_; }
    uv_loop_t* loop() const { return scheduler_.loop(); }
    bool finished() const { return finished_; }

  private:
    friend class RunQueue;
    void step(int nargs);
    void finish(TaskOutcome outcome);
    void fail_for_memory(const std::string& why);
    // Drops the coroutine (and collects when the state is more than half full).
    void release_coroutine();

    std::shared_ptr<LuaState> state_;
    RunQueue& scheduler_;
    TaskLabel label_;
    Done done_;
    std::uint64_t id_ = 0;
    LuaRef co_ref_;
    lua_State* co_ = nullptr;
    std::unique_ptr<Wait> wait_;
    std::uint64_t deadline_ns_ = 0;
    bool finished_ = false;
    bool running_ = false;
    int resume_nargs_ = 0; // values wake() left on the coroutine for the next resume
    // Set when wake() could not build the values to resume with; the next step fails the task.
    std::optional<std::string> wake_failure_;
};

} // namespace luaflow::scripting
