// enable and disable: override a workflow's `enabled` field; the daemon keeps it across restarts.
#include "ctl/commands/commands.hpp"
#include "ctl/table.hpp"

#include <cstdio>

namespace luaflow::ctl {

namespace {

int set_enabled(const Invocation& inv, bool enabled) {
    const char* method = enabled ? "enable" : "disable";
    int rc = kOk;
    auto args = parse_args(inv, {enabled ? "enable WF" : "disable WF", {}, {}, 1, 1}, rc);
    if (!args) return rc;
    auto r = request(inv, method, {{"workflow", args->positional[0]}}, rc);
    if (!r) return rc;
    if (inv.json)
        print_json(*r);
    else
        std::printf("%s %s\n", cell(r->value("id", json())).c_str(),
                    r->value("enabled", enabled) ? "enabled" : "disabled");
    return kOk;
}

} // namespace

int cmd_enable(const Invocation& inv) {
    return set_enabled(inv, true);
}

int cmd_disable(const Invocation& inv) {
    return set_enabled(inv, false);
}

} // namespace luaflow::ctl
