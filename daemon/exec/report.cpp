#include "daemon/exec/report.hpp"

#include "common/time_format.hpp"
#include "daemon/tz/zone.hpp"

namespace luaflow::exec {

using nlohmann::json;

namespace {

json or_null(std::optional<std::string>&& v) {
    return v ? json(std::move(*v)) : json();
}

} // namespace

// Built by moving the row's values in, one key at a time: an initializer list would copy every value
// (a 10 000-action document's outputs twice over).
json inspect_document(store::ExecutionRow r) {
    json actions = json::object();
    for (store::ActionRow& a : r.actions) {
        json& doc = actions[a.name];
        doc["status"] = to_string(a.status);
        doc["attempts"] = a.attempts;
        doc["output"] = a.output ? std::move(*a.output) : json();
        doc["error"] = or_null(std::move(a.error));
        doc["exit_code"] = a.exit_code ? json(*a.exit_code) : json();
        doc["host"] = or_null(std::move(a.host));
        doc["started_at"] = store::time_or_null(a.started_at);
        doc["finished_at"] = store::time_or_null(a.finished_at);
        if (a.event) doc["event"] = std::move(*a.event);
        if (a.next_attempt_at) doc["next_attempt_at"] = format_rfc3339(*a.next_attempt_at);
        if (a.waiting && a.status == ActionStatus::pending) doc["waiting"] = std::move(*a.waiting);
        if (a.allocation) doc["resources"] = std::move(*a.allocation);
    }
    for (store::ChildRow& c : r.children) {
        auto it = actions.find(c.action);
        if (it == actions.end()) continue;
        if (!it->contains("children")) (*it)["children"] = json::array();
        json child = json::object();
        child["id"] = std::move(c.id);
        child["workflow"] = std::move(c.workflow);
        child["status"] = to_string(c.status);
        (*it)["children"].push_back(std::move(child));
    }
    json doc = json::object();
    doc["id"] = std::move(r.id);
    doc["workflow"] = std::move(r.workflow);
    doc["status"] = to_string(r.status);
    doc["trigger"] = std::move(r.trigger);
    doc["input"] = std::move(r.input);
    doc["shared"] = std::move(r.shared);
    doc["error"] = or_null(std::move(r.error));
    doc["created_at"] = store::time_or_null(r.created_at);
    doc["started_at"] = store::time_or_null(r.started_at);
    doc["finished_at"] = store::time_or_null(r.finished_at);
    doc["scheduled_for"] =
        r.scheduled_for ? json(tz::format_scheduled(*r.scheduled_for, r.scheduled_tz)) : json();
    doc["parent"] = or_null(std::move(r.parent));
    doc["actions"] = std::move(actions);
    doc["events"] = std::move(r.events);
    doc["notifications"] = json::array();
    return doc;
}

} // namespace luaflow::exec
