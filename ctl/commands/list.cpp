// list: every workflow file, with the error of those that do not load shown under their row.
#include "ctl/commands/commands.hpp"
#include "ctl/table.hpp"

namespace luaflow::ctl {

namespace {

// One rule for people: the RRULE or cron text (with its zone), or a list of them.
std::string schedule_rule(const json& s) {
    if (s.is_string()) return s.get<std::string>();
    if (!s.is_object()) return cell(s);
    std::string rule = s.contains("rrule")  ? cell(s["rrule"])
                       : s.contains("cron") ? cell(s["cron"])
                                            : cell(s);
    if (s.contains("tz") && s["tz"].is_string()) rule += " (" + s["tz"].get<std::string>() + ")";
    return rule;
}

} // namespace

std::string schedule_text(const json& schedule) {
    if (schedule.is_null()) return "-";
    if (!schedule.is_array()) return schedule_rule(schedule);
    std::string out;
    for (const json& s : schedule)
        out += (out.empty() ? "" : "; ") + schedule_rule(s);
    return out.empty() ? "-" : out;
}

int cmd_list(const Invocation& inv) {
    int rc = kOk;
    if (!parse_args(inv, {"list", {}, {}}, rc)) return rc;
    auto r = request(inv, "list", json::object(), rc);
    if (!r) return rc;
    if (inv.json) {
        print_json(*r);
        return kOk;
    }
    Table t({"ID", "ENABLED", "STATUS", "SCHEDULE", "NEXT RUN", "LAST"});
    for (const json& w : *r) {
        json last = w.value("last_execution", json());
        std::string last_text = "-";
        if (last.is_object()) {
            json when = last.value("finished_at", json());
            last_text = status_text(cell(last.value("status", json()))) +
                        (when.is_string() ? " " + relative_time(when) : "");
        }
        t.add({cell(w.value("id", json())), w.value("enabled", true) ? "yes" : "no",
               status_text(cell(w.value("status", json()))), schedule_text(w.value("schedule", json())),
               relative_time(w.value("next_run", json())), last_text});
        if (json error = w.value("error", json()); error.is_string()) t.note(dim(error.get<std::string>()));
    }
    t.print();
    return kOk;
}

} // namespace luaflow::ctl
