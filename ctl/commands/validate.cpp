// validate: load workflow files as the daemon would, in this process; no daemon needed.
#include "ctl/commands/commands.hpp"
#include "daemon/offline.hpp"

#include <cstddef>
#include <cstdio>
#include <limits>

namespace luaflow::ctl {

int cmd_validate(const Invocation& inv) {
    int rc = kOk;
    auto args = parse_args(inv, {"validate FILE...", {}, {}, 1, std::numeric_limits<std::size_t>::max()}, rc);
    if (!args) return rc;
    json doc = offline::validate(args->positional);
    bool ok = doc.value("ok", false);
    if (inv.json) {
        print_json(doc);
    } else {
        print_load_errors(doc.value("errors", json::array()));
        if (ok) std::printf("ok\n");
    }
    return ok ? kOk : kFailed;
}

} // namespace luaflow::ctl
