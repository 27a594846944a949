#include "daemon/exec/report.hpp"

#include "common/status.hpp"
#include "common/time_format.hpp"
#include "daemon/store/events.hpp"
#include "daemon/store/notifications.hpp"
#include "daemon/tz/zone.hpp"

#include <algorithm>
#include <map>

namespace luaflow::exec {

using nlohmann::json;

namespace {

json or_null(std::optional<std::string>&& v) {
    return v ? json(std::move(*v)) : json();
}

std::string dumped(const json& v) {
    return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

void append_string(std::string& out, const std::string& s) {
    // Printable ASCII without a quote or a backslash is its own JSON text (names, ids, most errors):
    // copied as it is; anything else goes through nlohmann's escaping (a tenth of a report's time).
    bool plain = std::all_of(s.begin(), s.end(),
                             [](char c) { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'; });
    if (!plain) {
        out += dumped(json(s));
        return;
    }
    out += '"';
    out += s;
    out += '"';
}

void append_opt_string(std::string& out, const std::optional<std::string>& s) {
    if (s)
        append_string(out, *s);
    else
        out += "null";
}

void append_time(std::string& out, const std::optional<std::int64_t>& t) {
    if (!t) {
        out += "null";
        return;
    }
    out += '"'; // digits and -:T.+ need no escaping
    out += format_rfc3339(*t);
    out += '"';
}

// A JSON column as it is stored. The store writes these columns only with json::dump (executions.cpp:
// finish_action, start_attempt), so the text is the value's own dump, and parsing and dumping it again
// gives the same text: it goes in as it is (checking it with json::accept was a third of an inspect of
// 10 000 actions).
void append_stored_json(std::string& out, const std::optional<std::string>& text) {
    if (text && !text->empty())
        out += *text;
    else
        out += "null";
}

// One action's object, its keys in the order json::dump gives them (sorted), as inspect_document has it.
void append_action(std::string& out, const store::ActionText& a, const json* children) {
    const ActionStatus status = parse_action_status(a.status).value_or(ActionStatus::failed);
    out += "{\"attempts\":";
    out += std::to_string(a.attempts);
    if (children) {
        out += ",\"children\":";
        out += dumped(*children);
    }
    out += ",\"error\":";
    append_opt_string(out, a.error);
    if (a.event) {
        out += ",\"event\":";
        append_string(out, *a.event);
    }
    out += ",\"exit_code\":";
    out += a.exit_code ? std::to_string(static_cast<int>(*a.exit_code)) : std::string("null");
    out += ",\"finished_at\":";
    append_time(out, a.finished_at);
    out += ",\"host\":";
    append_opt_string(out, a.host);
    if (a.next_attempt_at) {
        out += ",\"next_attempt_at\":";
        append_time(out, a.next_attempt_at);
    }
    out += ",\"output\":";
    append_stored_json(out, a.output);
    if (a.allocation) {
        out += ",\"resources\":";
        append_stored_json(out, a.allocation);
    }
    out += ",\"started_at\":";
    append_time(out, a.started_at);
    out += ",\"status\":\""; // a status name needs no escaping
    out += to_string(status);
    out += '"';
    if (a.waiting && status == ActionStatus::pending) {
        out += ",\"waiting\":";
        append_string(out, *a.waiting);
    }
    out += '}';
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
    doc["notifications"] = std::move(r.notifications);
    return doc;
}

ReportWriter::ReportWriter(const std::vector<store::ChildRow>& children) {
    for (const store::ChildRow& c : children) {
        json& list = children_[c.action];
        if (list.is_null()) list = json::array();
        json child = json::object();
        child["id"] = c.id;
        child["workflow"] = c.workflow;
        child["status"] = to_string(c.status);
        list.push_back(std::move(child));
    }
    // "actions" sorts first of the document's keys: its text, then the rest of the document's.
    out_ = "{\"actions\":{";
    // A 3-action report is about 1 KB; a larger one grows by doubling. Not more at first: a block over
    // 1 KiB is not one glibc keeps at hand per thread (its tcache), and asking for one first merges
    // the small free blocks (malloc_consolidate, 1 % of a webhook's time at 16 connections).
    out_.reserve(1000);
}

void ReportWriter::action(const store::ActionText& a) {
    if (!first_) out_ += ',';
    first_ = false;
    append_string(out_, a.name);
    out_ += ':';
    auto it = children_.find(a.name);
    append_action(out_, a, it == children_.end() ? nullptr : &it->second);
}

// The keys after "actions", in the order json::dump gives them (sorted), as inspect_document has them.
std::string ReportWriter::finish(const store::ExecutionText& e, const json& events,
                                 const json& notifications) {
    out_ += "},\"created_at\":";
    append_time(out_, e.created_at);
    out_ += ",\"error\":";
    append_opt_string(out_, e.error);
    out_ += ",\"events\":";
    out_ += dumped(events);
    out_ += ",\"finished_at\":";
    append_time(out_, e.finished_at);
    out_ += ",\"id\":";
    append_string(out_, e.id);
    out_ += ",\"input\":";
    append_stored_json(out_, e.input);
    out_ += ",\"notifications\":";
    out_ += dumped(notifications);
    out_ += ",\"parent\":";
    append_opt_string(out_, e.parent);
    out_ += ",\"scheduled_for\":";
    if (e.scheduled_for)
        append_string(out_, tz::format_scheduled(*e.scheduled_for, e.scheduled_tz));
    else
        out_ += "null";
    out_ += ",\"shared\":";
    append_stored_json(out_, e.shared);
    out_ += ",\"started_at\":";
    append_time(out_, e.started_at);
    out_ += ",\"status\":\""; // a status name needs no escaping
    out_ += to_string(e.status);
    out_ += "\",\"trigger\":";
    append_stored_json(out_, e.trigger);
    out_ += ",\"workflow\":";
    append_string(out_, e.workflow);
    out_ += '}';
    return std::move(out_);
}

std::optional<std::string> inspect_text(store::Db& db, const std::string& id) {
    auto row = store::find_execution_text(db, id);
    if (!row) return std::nullopt;
    ReportWriter writer(store::children_of(db, id));
    store::each_action_text(db, id, [&](const store::ActionText& a) { writer.action(a); });
    return writer.finish(*row, store::execution_events(db, id), store::execution_notifications(db, id));
}

} // namespace luaflow::exec
