// notify test NOTIFIER: one test message through a notifier of the daemon's config, sent now; exit 1
// with the transport's own words when it is not delivered.
#include "ctl/commands/commands.hpp"

#include <cstdio>

namespace luaflow::ctl {

int cmd_notify(const Invocation& inv) {
    const Syntax syntax = {"notify test NOTIFIER", {}, {}, 2, 2};
    int rc = kOk;
    auto args = parse_args(inv, syntax, rc);
    if (!args) return rc;
    if (args->positional[0] != "test")
        return usage_error("notify: unknown operation '" + args->positional[0] + "' (test)", syntax.usage);
    auto r = request(inv, "notify_test", {{"notifier", args->positional[1]}}, rc);
    if (!r) return rc;
    if (inv.json)
        print_json(*r);
    else
        std::printf("sent a test message through %s\n", args->positional[1].c_str());
    return kOk;
}

} // namespace luaflow::ctl
