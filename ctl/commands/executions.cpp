// executions (alias ps): executions, newest first, optionally of one workflow or status.
#include "ctl/commands/commands.hpp"
#include "ctl/table.hpp"

#include <charconv>

namespace luaflow::ctl {

int cmd_executions(const Invocation& inv) {
    const Syntax syntax = {
        "executions [--workflow WF] [--status S] [--limit N]", {"--workflow", "--status", "--limit"}, {}};
    int rc = kOk;
    auto args = parse_args(inv, syntax, rc);
    if (!args) return rc;
    json params = json::object();
    if (auto w = args->value("--workflow")) params["workflow"] = *w;
    if (auto s = args->value("--status")) params["status"] = *s; // the daemon names the valid ones
    if (auto limit = args->value("--limit")) {
        int n = 0;
        auto [end, ec] = std::from_chars(limit->data(), limit->data() + limit->size(), n);
        if (ec != std::errc() || end != limit->data() + limit->size() || n < 1)
            return usage_error("executions: --limit needs a positive integer, got '" + *limit + "'",
                               syntax.usage);
        params["limit"] = n;
    }
    auto r = request(inv, "executions", params, rc);
    if (!r) return rc;
    if (inv.json) {
        print_json(*r);
        return kOk;
    }
    Table t({"ID", "WORKFLOW", "STATUS", "TRIGGER", "CREATED", "DURATION"});
    for (const json& e : *r) {
        json trigger = e.value("trigger", json());
        t.add({cell(e.value("id", json())), cell(e.value("workflow", json())),
               status_text(cell(e.value("status", json()))),
               trigger.is_object() ? cell(trigger.value("type", json())) : cell(trigger),
               relative_time(e.value("created_at", json())),
               elapsed(e.value("started_at", json()), e.value("finished_at", json()))});
    }
    t.print();
    return kOk;
}

} // namespace luaflow::ctl
