// inspect: an execution's report. print_report is shared with run --wait and test.
#include "common/time_format.hpp"
#include "ctl/commands/commands.hpp"
#include "ctl/table.hpp"

#include <algorithm>
#include <cstdio>
#include <tuple>

namespace luaflow::ctl {

namespace {

// "2026-11-22T10:00:00.123+01:00 (3m ago)", or "-".
std::string time_field(const json& t) {
    if (!t.is_string()) return "-";
    return t.get<std::string>() + " (" + relative_time(t) + ")";
}

std::string trigger_text(const json& trigger) {
    if (!trigger.is_object()) return cell(trigger);
    std::string text = cell(trigger.value("type", json()));
    json rest = trigger;
    rest.erase("type");
    return rest.empty() ? text : text + " " + cell(rest);
}

void print_header(const json& r) {
    Fields f;
    f.add("execution", cell(r.value("id", json())));
    f.add("workflow", cell(r.value("workflow", json())));
    f.add("status", status_text(cell(r.value("status", json()))));
    f.add("trigger", trigger_text(r.value("trigger", json())));
    if (json parent = r.value("parent", json()); !parent.is_null()) f.add("parent", cell(parent));
    if (json input = r.value("input", json()); !input.is_null() && !input.empty())
        f.add("input", cell(input));
    if (json s = r.value("scheduled_for", json()); s.is_string()) f.add("scheduled for", time_field(s));
    f.add("created", time_field(r.value("created_at", json())));
    f.add("started", time_field(r.value("started_at", json())));
    f.add("finished", time_field(r.value("finished_at", json())));
    f.add("duration", elapsed(r.value("started_at", json()), r.value("finished_at", json())));
    if (json error = r.value("error", json()); error.is_string()) f.add("error", error.get<std::string>());
    f.print();
}

// Actions in the order they started (never-started ones last, by name): the order things happened.
std::vector<std::pair<std::string, json>> actions_in_order(const json& actions) {
    std::vector<std::pair<std::string, json>> out;
    if (!actions.is_object()) return out;
    for (const auto& [name, a] : actions.items())
        out.emplace_back(name, a);
    auto key = [](const std::pair<std::string, json>& p) {
        json started = p.second.value("started_at", json());
        auto ms = started.is_string() ? parse_rfc3339(started.get<std::string>()) : std::nullopt;
        return std::make_tuple(!ms.has_value(), ms.value_or(0), p.first);
    };
    std::stable_sort(out.begin(), out.end(), [&](const auto& a, const auto& b) { return key(a) < key(b); });
    return out;
}

} // namespace

void print_report(const json& r) {
    print_header(r);
    auto actions = actions_in_order(r.value("actions", json::object()));
    std::printf("\n");
    Table t({"NAME", "STATUS", "ATTEMPTS", "HOST", "DURATION", "ERROR"});
    for (const auto& [name, a] : actions) {
        std::string error = truncate(cell(a.value("error", json())), 100);
        if (json next = a.value("next_attempt_at", json()); next.is_string())
            error += " (retry " + relative_time(next) + ")";
        // A pending action that cannot start yet says why instead.
        if (json why = a.value("waiting", json()); why.is_string())
            error = "waiting: " + why.get<std::string>();
        std::string host = a.value("host", json()).is_string() ? a["host"].get<std::string>() : "-";
        if (json gpus = a.value("resources", json::object()).value("gpus", json());
            gpus.is_array() && !gpus.empty()) {
            std::string ids;
            for (const json& g : gpus)
                ids += (ids.empty() ? "" : ",") + cell(g);
            host += " gpu:" + ids;
        }
        t.add({name, status_text(cell(a.value("status", json()))), cell(a.value("attempts", json())), host,
               elapsed(a.value("started_at", json()), a.value("finished_at", json())), error});
    }
    t.print();
    bool any_output = false;
    for (const auto& [name, a] : actions) {
        json output = a.value("output", json());
        if (output.is_null()) continue;
        if (!any_output) std::printf("\noutputs:\n");
        any_output = true;
        std::printf("  %s: %s\n", name.c_str(), truncate(cell(output), 200).c_str());
    }
    bool any_child = false;
    for (const auto& [name, a] : actions) {
        json children = a.value("children", json::array());
        if (!children.is_array() || children.empty()) continue;
        if (!any_child) {
            std::printf("\nchildren:\n");
            any_child = true;
        }
        for (const json& c : children)
            std::printf("  %s: %s %s %s\n", name.c_str(), cell(c.value("id", json())).c_str(),
                        cell(c.value("workflow", json())).c_str(),
                        status_text(cell(c.value("status", json()))).c_str());
    }
    print_events("events", r.value("events", json()));
    json notifications = r.value("notifications", json::array());
    if (notifications.is_array() && !notifications.empty()) {
        std::printf("\n");
        Table n({"NOTIFIER", "EVENT", "STATUS", "ATTEMPTS", "ERROR"});
        for (const json& x : notifications)
            n.add({cell(x.value("notifier", json())), cell(x.value("event", json())),
                   status_text(cell(x.value("status", json()))), cell(x.value("attempts", json())),
                   truncate(cell(x.value("error", json())), 100)});
        n.print();
    }
}

int cmd_inspect(const Invocation& inv) {
    int rc = kOk;
    auto args = parse_args(inv, {"inspect EXEC", {}, {}, 1, 1}, rc);
    if (!args) return rc;
    auto r = request(inv, "inspect", {{"execution", args->positional[0]}}, rc);
    if (!r) return rc;
    if (inv.json)
        print_json(*r);
    else
        print_report(*r);
    return kOk;
}

} // namespace luaflow::ctl
