// next: a workflow's upcoming fire times, in its rules' zones.
#include "ctl/commands/commands.hpp"
#include "ctl/table.hpp"

#include <charconv>
#include <cstdio>

namespace luaflow::ctl {

int cmd_next(const Invocation& inv) {
    const Syntax syntax = {"next WF [-n N] [--after TIME]", {"-n", "--after"}, {}, 1, 1};
    int rc = kOk;
    auto args = parse_args(inv, syntax, rc);
    if (!args) return rc;
    json params = {{"workflow", args->positional[0]}};
    if (auto count = args->value("-n")) {
        int n = 0;
        auto [end, ec] = std::from_chars(count->data(), count->data() + count->size(), n);
        if (ec != std::errc() || end != count->data() + count->size() || n < 1 || n > 1000)
            return usage_error("next: -n needs an integer from 1 to 1000, got '" + *count + "'",
                               syntax.usage);
        params["n"] = n;
    }
    if (auto after = args->value("--after")) params["after"] = *after; // the daemon checks it
    auto r = request(inv, "next", params, rc);
    if (!r) return rc;
    if (inv.json) {
        print_json(*r);
        return kOk;
    }
    if (r->empty()) std::printf("no more occurrences\n");
    for (const json& t : *r)
        std::printf("%s  %s\n", cell(t).c_str(), relative_time(t).c_str());
    return kOk;
}

} // namespace luaflow::ctl
