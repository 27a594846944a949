// validate: load workflow files as the daemon would (in luaflowd --offline), with the config's sandbox
// paths, hosts and notifiers (SPEC 6); no daemon needed.
#include "ctl/commands/commands.hpp"
#include "ctl/offline_runner.hpp"

#include <cstddef>
#include <cstdio>
#include <limits>

namespace luaflow::ctl {

int cmd_validate(const Invocation& inv) {
    int rc = kOk;
    auto args = parse_args(
        inv,
        {"validate [-c CONFIG] FILE...", {"-c", "--config"}, {}, 1, std::numeric_limits<std::size_t>::max()},
        rc);
    if (!args) return rc;
    json files = json::array();
    for (const std::string& f : args->positional)
        files.push_back(f); // as given: the errors name them so (luaflowd runs in this directory)
    json config = config_file_option(*args);
    auto doc_or = run_offline({{"command", "validate"}, {"files", files}, {"config", config}}, rc);
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
