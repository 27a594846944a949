// validate: load workflow files as the daemon would (in luaflowd --offline); no daemon needed.
#include "ctl/commands/commands.hpp"
#include "ctl/offline_runner.hpp"

#include <cstddef>
#include <cstdio>
#include <limits>

namespace luaflow::ctl {

int cmd_validate(const Invocation& inv) {
    int rc = kOk;
    auto args = parse_args(inv, {"validate FILE...", {}, {}, 1, std::numeric_limits<std::size_t>::max()}, rc);
    if (!args) return rc;
    std::vector<std::string> offline_args = {"validate"};
    offline_args.insert(offline_args.end(), args->positional.begin(), args->positional.end());
    auto doc_or = run_offline(offline_args, rc);
    if (!doc_or) return rc;
    json doc = std::move(*doc_or);
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
