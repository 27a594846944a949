// reload: reload the config and every workflow file now, as SIGHUP does; exit 1 if a file fails to load.
#include "ctl/commands/commands.hpp"
#include "ctl/table.hpp"

#include <cstdio>

namespace luaflow::ctl {

int cmd_reload(const Invocation& inv) {
    int rc = kOk;
    if (!parse_args(inv, {"reload", {}, {}}, rc)) return rc;
    auto r = request(inv, "reload", json::object(), rc);
    if (!r) return rc;
    json errors = r->value("errors", json::array());
    if (inv.json) {
        print_json(*r);
    } else {
        std::printf("%s workflow(s) loaded\n", cell(r->value("workflows", json())).c_str());
        print_load_errors(errors);
    }
    // The daemon keeps the last good version of a broken file, but the file still needs fixing.
    return errors.is_array() && !errors.empty() ? kFailed : kOk;
}

} // namespace luaflow::ctl
