// status: the daemon's version, uptime and counts.
#include "common/size.hpp"
#include "ctl/commands/commands.hpp"
#include "ctl/table.hpp"

namespace luaflow::ctl {

int cmd_status(const Invocation& inv) {
    int rc = kOk;
    if (!parse_args(inv, {"status", {}, {}}, rc)) return rc;
    auto r = request(inv, "status", json::object(), rc);
    if (!r) return rc;
    if (inv.json) {
        print_json(*r);
        return kOk;
    }
    const json& s = *r;
    json uptime = s.value("uptime_s", json());
    Fields f;
    f.add("version", cell(s.value("version", json())));
    f.add("uptime", uptime.is_number() ? human_span(uptime.get<double>()) : "-");
    f.add("workflows", cell(s.value("workflows", json())));
    std::string errors = cell(s.value("workflow_errors", json()));
    if (s.value("workflow_errors", 0) > 0) errors = red(errors) + " (see luaflowctl list)";
    f.add("workflow errors", errors);
    f.add("running", cell(s.value("running", json())));
    f.add("queued", cell(s.value("queued", json())));
    json db = s.value("database_bytes", json());
    f.add("database", db.is_number_unsigned() ? format_size(db.get<std::uint64_t>()) : "-");
    f.print();
    return kOk;
}

} // namespace luaflow::ctl
