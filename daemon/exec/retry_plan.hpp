#pragma once
// Retry planning (SPEC 3 and 6), pure functions of the definition: when a failed attempt is made
// again, and which actions `luaflowctl retry` runs again. Unit-tested without an engine.
#include "common/duration.hpp"
#include "common/status.hpp"
#include "scripting/workflow_def.hpp"

#include <string>
#include <vector>

namespace luaflow::exec {

// The wait before the next attempt after `failed_attempts` failed ones: the action's retry_delay, or
// with exponential backoff that delay doubled per earlier failure, capped at scripting::kMaxBackoff.
Millis retry_delay(const scripting::ActionDef& action, int failed_attempts);

// What an attempt's failure means for its action.
struct AfterFailure {
    bool retry = false;
    Millis delay = 0; // when retry
    std::string what; // "attempt 2/4 timed out: ...", as the log and the daemon's log say it
};
// `used`: attempts made since the last `luaflowctl retry`, this one included.
AfterFailure after_failure(const scripting::ActionDef& action, int used, bool timed_out,
                           const std::string& error);

// The actions a retry of an ended execution runs again: those that did not succeed or were skipped
// (failed, timed out, cancelled, never started), and every action that needs one of them. `statuses`
// is by action index; an action missing from the store is pending.
std::vector<bool> actions_to_rerun(const scripting::WorkflowDef& def,
                                   const std::vector<ActionStatus>& statuses);

} // namespace luaflow::exec
