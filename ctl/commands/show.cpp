// show: one workflow's file, fields, declared inputs and actions.
#include "ctl/commands/commands.hpp"
#include "ctl/table.hpp"

#include <cstdio>

namespace luaflow::ctl {

namespace {

// "manual, webhook, watch /srv/in (*.csv), after nightly (success)": the triggers that are on.
std::string triggers_text(const json& triggers) {
    if (!triggers.is_object()) return cell(triggers);
    std::string out;
    for (const auto& [kind, t] : triggers.items()) {
        if (t.is_null() || t == false) continue;
        std::string text = kind;
        if (t.is_object() && t.contains("path")) {
            text += " " + cell(t["path"]);
            if (t.contains("pattern")) text += " (" + cell(t["pattern"]) + ")";
        } else if (t.is_object() && t.contains("workflow")) {
            text += " " + cell(t["workflow"]);
            if (t.contains("on")) text += " (" + cell(t["on"]) + ")";
        } else if (!t.is_boolean()) {
            text += " " + cell(t);
        }
        out += (out.empty() ? "" : ", ") + text;
    }
    return out.empty() ? "none" : out;
}

std::string join(const json& names) {
    std::string out;
    for (const json& n : names)
        out += (out.empty() ? "" : ",") + cell(n);
    return out.empty() ? "-" : out;
}

void print_fields(const json& w) {
    Fields f;
    f.add("workflow", cell(w.value("id", json())));
    f.add("file", cell(w.value("file", json())));
    f.add("description", cell(w.value("description", json())));
    f.add("enabled", w.value("enabled", true) ? "yes" : "no");
    f.add("status", status_text(cell(w.value("status", json()))));
    if (json error = w.value("error", json()); error.is_string()) f.add("error", error.get<std::string>());
    f.add("schedule", schedule_text(w.value("schedule", json())));
    f.add("next run", relative_time(w.value("next_run", json())));
    f.add("triggers", triggers_text(w.value("triggers", json())));
    f.add("concurrency",
          cell(w.value("concurrency", json())) + " (overlap " + cell(w.value("overlap", json())) + ")");
    f.add("timeout", cell(w.value("timeout", json())));
    f.add("executions", cell(w.value("running", json())) + " running, " + cell(w.value("queued", json())) +
                            " queued, " + cell(w.value("skipped", json())) + " occurrences skipped");
    json last = w.value("last_execution", json());
    if (last.is_object())
        f.add("last execution", cell(last.value("id", json())) + " " +
                                    status_text(cell(last.value("status", json()))) + " " +
                                    relative_time(last.value("finished_at", json())));
    else
        f.add("last execution", "-");
    f.print();
}

} // namespace

int cmd_show(const Invocation& inv) {
    int rc = kOk;
    auto args = parse_args(inv, {"show WF", {}, {}, 1, 1}, rc);
    if (!args) return rc;
    auto r = request(inv, "show", {{"workflow", args->positional[0]}}, rc);
    if (!r) return rc;
    if (inv.json) {
        print_json(*r);
        return kOk;
    }
    const json& w = *r;
    print_fields(w);
    if (json inputs = w.value("input", json()); inputs.is_object() && !inputs.empty()) {
        std::printf("\n");
        Table t({"INPUT", "TYPE", "REQUIRED", "DEFAULT"});
        for (const auto& [name, d] : inputs.items())
            t.add({name, cell(d.value("type", json())), d.value("required", false) ? "yes" : "no",
                   cell(d.value("default", json()))});
        t.print();
    }
    std::printf("\n");
    Table t({"ACTION", "KIND", "NEEDS", "GROUP", "TIMEOUT", "RETRIES", "QUEUE", "HOST"});
    for (const json& a : w.value("actions", json::array()))
        t.add({cell(a.value("name", json())), cell(a.value("kind", json())),
               join(a.value("needs", json::array())), cell(a.value("group", json())),
               cell(a.value("timeout", json())), cell(a.value("retries", json())),
               cell(a.value("queue", json())), cell(a.value("host", json()))});
    t.print();
    if (json upcoming = w.value("upcoming", json()); upcoming.is_array() && !upcoming.empty()) {
        std::printf("\nupcoming:\n");
        for (const json& u : upcoming)
            std::printf("  %s  %s\n", cell(u).c_str(), relative_time(u).c_str());
    }
    print_events("recent events", w.value("events", json()));
    return kOk;
}

} // namespace luaflow::ctl
