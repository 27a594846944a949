// status, list, show, enable, disable, reload
#include "ctl/commands/commands.hpp"
#include "ctl/table.hpp"

#include <cstdio>

namespace luaflow::ctl {

int cmd_status(const Invocation& inv) {
    if (!inv.args.empty()) return usage_error("status takes no arguments");
    int rc = kOk;
    auto r = call(inv, "status", json::object(), rc);
    if (!r) return rc;
    if (inv.json) {
        print_json(*r);
        return kOk;
    }
    std::printf("version          %s\n", cell((*r)["version"]).c_str());
    std::printf("uptime           %ss\n", cell((*r)["uptime_s"]).c_str());
    std::printf("workflows        %s\n", cell((*r)["workflows"]).c_str());
    std::printf("workflow errors  %s\n", cell((*r)["workflow_errors"]).c_str());
    std::printf("running          %s\n", cell((*r)["running"]).c_str());
    std::printf("queued           %s\n", cell((*r)["queued"]).c_str());
    return kOk;
}

int cmd_list(const Invocation& inv) {
    if (!inv.args.empty()) return usage_error("list takes no arguments");
    int rc = kOk;
    auto r = call(inv, "list", json::object(), rc);
    if (!r) return rc;
    if (inv.json) {
        print_json(*r);
        return kOk;
    }
    Table t({"ID", "ENABLED", "STATUS", "SCHEDULE", "NEXT RUN", "LAST"});
    std::vector<std::string> errors;
    for (const auto& w : *r) {
        json last = w.value("last_execution", json());
        std::string last_text =
            last.is_object() ? status_text(cell(last["status"])) + " " + relative_time(last["finished_at"])
                             : "-";
        json schedule = w.value("schedule", json());
        std::string sched = schedule.is_null()                                   ? "-"
                            : schedule.is_string()                               ? schedule.get<std::string>()
                            : schedule.is_object() && schedule.contains("rrule") ? cell(schedule["rrule"])
                            : schedule.is_object() && schedule.contains("cron")  ? cell(schedule["cron"])
                                                                                 : schedule.dump();
        t.add({cell(w["id"]), w.value("enabled", true) ? "yes" : "no", status_text(cell(w["status"])), sched,
               relative_time(w.value("next_run", json())), last_text});
        if (w.value("error", json()).is_string()) errors.push_back(w["error"].get<std::string>());
    }
    t.print();
    for (const auto& e : errors)
        std::printf("\n%s", e.c_str());
    if (!errors.empty()) std::printf("\n");
    return kOk;
}

int cmd_show(const Invocation& inv) {
    if (inv.args.size() != 1) return usage_error("show needs one workflow id");
    int rc = kOk;
    auto r = call(inv, "show", {{"workflow", inv.args[0]}}, rc);
    if (!r) return rc;
    if (inv.json) {
        print_json(*r);
        return kOk;
    }
    const json& w = *r;
    std::printf("workflow     %s\n", cell(w["id"]).c_str());
    std::printf("file         %s\n", cell(w.value("file", json())).c_str());
    std::printf("description  %s\n", cell(w.value("description", json())).c_str());
    std::printf("enabled      %s\n", w.value("enabled", true) ? "yes" : "no");
    std::printf("status       %s\n", status_text(cell(w["status"])).c_str());
    if (w.value("error", json()).is_string())
        std::printf("error        %s\n", w["error"].get<std::string>().c_str());
    std::printf("concurrency  %s (overlap %s)\n", cell(w.value("concurrency", json())).c_str(),
                cell(w.value("overlap", json())).c_str());
    std::printf("running      %s, queued %s\n", cell(w.value("running", json())).c_str(),
                cell(w.value("queued", json())).c_str());
    if (w.contains("input") && !w["input"].empty()) {
        std::printf("\n");
        Table in({"INPUT", "TYPE", "REQUIRED", "DEFAULT"});
        for (const auto& [name, d] : w["input"].items())
            in.add({name, cell(d["type"]), d.value("required", false) ? "yes" : "no",
                    cell(d.value("default", json()))});
        in.print();
    }
    std::printf("\n");
    Table t({"ACTION", "KIND", "NEEDS", "GROUP", "TIMEOUT", "RETRIES", "QUEUE"});
    for (const auto& a : w.value("actions", json::array())) {
        std::string needs;
        for (const auto& n : a.value("needs", json::array()))
            needs += (needs.empty() ? "" : ",") + n.get<std::string>();
        t.add({cell(a["name"]), cell(a["kind"]), needs.empty() ? "-" : needs, cell(a.value("group", json())),
               cell(a.value("timeout", json())), cell(a.value("retries", json())),
               cell(a.value("queue", json()))});
    }
    t.print();
    return kOk;
}

static int set_enabled(const Invocation& inv, bool enabled) {
    if (inv.args.size() != 1)
        return usage_error(std::string(enabled ? "enable" : "disable") + " needs one workflow id");
    int rc = kOk;
    auto r = call(inv, enabled ? "enable" : "disable", {{"workflow", inv.args[0]}}, rc);
    if (!r) return rc;
    if (inv.json)
        print_json(*r);
    else
        std::printf("%s %s\n", inv.args[0].c_str(), enabled ? "enabled" : "disabled");
    return kOk;
}

int cmd_enable(const Invocation& inv) {
    return set_enabled(inv, true);
}
int cmd_disable(const Invocation& inv) {
    return set_enabled(inv, false);
}

int cmd_reload(const Invocation& inv) {
    if (!inv.args.empty()) return usage_error("reload takes no arguments");
    int rc = kOk;
    auto r = call(inv, "reload", json::object(), rc);
    if (!r) return rc;
    const json& errors = (*r)["errors"];
    if (inv.json) {
        print_json(*r);
    } else {
        std::printf("%s workflow(s) loaded\n", cell((*r)["workflows"]).c_str());
        for (const auto& e : errors)
            std::printf("%s:%s: %s\n", cell(e["file"]).c_str(), cell(e["line"]).c_str(),
                        cell(e["message"]).c_str());
    }
    return errors.empty() ? kOk : kFailed;
}

} // namespace luaflow::ctl
