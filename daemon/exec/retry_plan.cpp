#include "daemon/exec/retry_plan.hpp"

#include <algorithm>

namespace luaflow::exec {

Millis retry_delay(const scripting::ActionDef& a, int failed_attempts) {
    if (a.backoff == scripting::Backoff::fixed) return a.retry_delay;
    Millis d = a.retry_delay;
    for (int k = 1; k < failed_attempts && d < scripting::kMaxBackoff; ++k)
        d *= 2;
    return std::min(d, scripting::kMaxBackoff);
}

AfterFailure after_failure(const scripting::ActionDef& a, int used, bool timed_out,
                           const std::string& error) {
    AfterFailure f;
    f.what = "attempt " + std::to_string(used) + "/" + std::to_string(a.retries + 1) + " " +
             (timed_out ? "timed out" : "failed") + ": " + error;
    f.retry = used <= a.retries;
    if (f.retry) f.delay = retry_delay(a, used);
    return f;
}

std::vector<bool> actions_to_rerun(const scripting::WorkflowDef& def,
                                   const std::vector<ActionStatus>& statuses) {
    std::vector<bool> rerun(def.actions.size(), false);
    for (std::size_t i = 0; i < def.actions.size(); ++i) {
        ActionStatus s = i < statuses.size() ? statuses[i] : ActionStatus::pending;
        rerun[i] = s == ActionStatus::failed || s == ActionStatus::timed_out ||
                   s == ActionStatus::cancelled || s == ActionStatus::pending;
    }
    // Dependents come after what they need in no particular index order: walk the edges forward.
    std::vector<std::size_t> work;
    for (std::size_t i = 0; i < rerun.size(); ++i)
        if (rerun[i]) work.push_back(i);
    while (!work.empty()) {
        std::size_t i = work.back();
        work.pop_back();
        for (std::size_t d : def.actions[i].dependents)
            if (!rerun[d]) {
                rerun[d] = true;
                work.push_back(d);
            }
    }
    return rerun;
}

} // namespace luaflow::exec
