#include "daemon/exec/report.hpp"

#include "common/time_format.hpp"
#include "daemon/tz/zone.hpp"

namespace luaflow::exec {

using nlohmann::json;

json inspect_document(const store::ExecutionRow& r) {
    json actions = json::object();
    for (const store::ActionRow& a : r.actions) {
        actions[a.name] = {{"status", to_string(a.status)},
                           {"attempts", a.attempts},
                           {"output", a.output ? *a.output : json()},
                           {"error", a.error ? json(*a.error) : json()},
                           {"exit_code", a.exit_code ? json(*a.exit_code) : json()},
                           {"host", a.host ? json(*a.host) : json()},
                           {"started_at", store::time_or_null(a.started_at)},
                           {"finished_at", store::time_or_null(a.finished_at)}};
        if (a.event) actions[a.name]["event"] = *a.event;
        if (a.next_attempt_at) actions[a.name]["next_attempt_at"] = format_rfc3339(*a.next_attempt_at);
        if (a.waiting && a.status == ActionStatus::pending) actions[a.name]["waiting"] = *a.waiting;
        if (a.allocation) actions[a.name]["resources"] = *a.allocation;
    }
    for (const store::ChildRow& c : r.children) {
        auto it = actions.find(c.action);
        if (it == actions.end()) continue;
        if (!it->contains("children")) (*it)["children"] = json::array();
        (*it)["children"].push_back(
            {{"id", c.id}, {"workflow", c.workflow}, {"status", to_string(c.status)}});
    }
    return {{"id", r.id},
            {"workflow", r.workflow},
            {"status", to_string(r.status)},
            {"trigger", r.trigger},
            {"input", r.input},
            {"shared", r.shared},
            {"error", r.error ? json(*r.error) : json()},
            {"created_at", store::time_or_null(r.created_at)},
            {"started_at", store::time_or_null(r.started_at)},
            {"finished_at", store::time_or_null(r.finished_at)},
            {"scheduled_for",
             r.scheduled_for ? json(tz::format_scheduled(*r.scheduled_for, r.scheduled_tz)) : json()},
            {"parent", r.parent ? json(*r.parent) : json()},
            {"actions", actions},
            {"events", r.events},
            {"notifications", json::array()}};
}

} // namespace luaflow::exec
