#include "daemon/exec/success_log.hpp"

namespace luaflow::exec {

SuccessLog::Verdict SuccessLog::on_success(const std::string& workflow, UnixMillis now) {
    Entry& e = by_workflow_[workflow];
    // A clock set back logs at once rather than going quiet until it catches up.
    if (e.logged && now >= e.logged_at && now - e.logged_at < kInterval) {
        ++e.unlogged;
        return {false, 0};
    }
    Verdict v{true, e.unlogged};
    e = Entry{now, 0, true};
    return v;
}

} // namespace luaflow::exec
