#pragma once
// Runs `run`/`script` actions and `when` checks as coroutines in the workflow's Lua state.
#include "daemon/exec/attempt.hpp"
#include "scripting/task.hpp"

#include <memory>

namespace luaflow::exec {

// A `when` check ends with a decision, or with a failure (its error, its timeout).
using WhenDone = std::function<void(std::optional<bool> run_it, AttemptResult failure)>;

class LuaRunner {
  public:
    explicit LuaRunner(scripting::RunQueue& scheduler) : scheduler_(scheduler) {}

    // An attempt that calls the action's function (or script chunk) with ctx once started; `begun` runs
    // when its turn on the run queue has come, just before the call.
    std::unique_ptr<Attempt> run(AttemptSpec spec, AttemptDone done, std::function<void()> begun = nullptr);
    // Fills a `cmd`'s {{ expr }} templates: the output is the expanded argv, a JSON list of strings.
    std::unique_ptr<Attempt> expand_argv(AttemptSpec spec, AttemptDone done);
    // An attempt that calls the action's `when` with ctx once started.
    std::unique_ptr<Attempt> check_when(AttemptSpec spec, WhenDone done);

  private:
    scripting::RunQueue& scheduler_;
};

} // namespace luaflow::exec
