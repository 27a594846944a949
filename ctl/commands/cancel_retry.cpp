// cancel and retry: change an execution; both answer {"id","status"} with its status afterwards.
#include "ctl/commands/commands.hpp"
#include "ctl/table.hpp"

#include <cstdio>

namespace luaflow::ctl {

namespace {

int change_execution(const Invocation& inv, const char* method, const char* usage) {
    int rc = kOk;
    auto args = parse_args(inv, {usage, {}, {}, 1, 1}, rc);
    if (!args) return rc;
    auto r = request(inv, method, {{"execution", args->positional[0]}}, rc);
    if (!r) return rc;
    if (inv.json)
        print_json(*r);
    else
        std::printf("%s %s\n", cell(r->value("id", json())).c_str(),
                    status_text(cell(r->value("status", json()))).c_str());
    return kOk;
}

} // namespace

int cmd_cancel(const Invocation& inv) {
    return change_execution(inv, "cancel", "cancel EXEC");
}

int cmd_retry(const Invocation& inv) {
    return change_execution(inv, "retry", "retry EXEC");
}

} // namespace luaflow::ctl
