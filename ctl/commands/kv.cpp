// kv get KEY | kv set KEY VALUE | kv delete KEY | kv list, of a workflow (--workflow WF) or the global
// store.
#include "common/json_depth.hpp"
#include "common/protocol.hpp"
#include "ctl/commands/commands.hpp"
#include "ctl/table.hpp"

#include <cstdio>

namespace luaflow::ctl {

int cmd_kv(const Invocation& inv) {
    const Syntax syntax = {
        "kv get KEY [--workflow WF] | kv set KEY VALUE [--workflow WF] | kv delete KEY [--workflow WF] | "
        "kv list [--workflow WF]",
        {"--workflow"},
        {},
        1,
        3};
    int rc = kOk;
    auto args = parse_args(inv, syntax, rc);
    if (!args) return rc;
    const std::string& op = args->positional[0];
    json params = json::object();
    if (auto w = args->value("--workflow")) params["workflow"] = *w;
    const std::size_t want = op == "get" || op == "delete" ? 2 : op == "set" ? 3 : op == "list" ? 1 : 0;
    if (want == 0)
        return usage_error("kv: unknown operation '" + op + "' (get, set, delete or list)", syntax.usage);
    if (args->positional.size() != want)
        return usage_error("kv " + op + ": expected " + std::to_string(want - 1) + " argument(s)",
                           syntax.usage);
    if (want >= 2) params["key"] = args->positional[1];
    if (op == "set") {
        // VALUE is JSON when it parses as JSON ({"a":1}, 42, true, "text"), else the text itself.
        const std::string& text = args->positional[2];
        if (json_nesting_exceeds(text, protocol::kMaxJsonDepth))
            return usage_error("kv set: VALUE is nested deeper than " +
                               std::to_string(protocol::kMaxJsonDepth) + " levels");
        json value = json::parse(text, nullptr, false);
        params["value"] = value.is_discarded() || value.is_null() ? json(text) : value;
    }
    auto r = request(inv, "kv_" + op, params, rc);
    if (!r) return rc;
    if (inv.json) {
        print_json(op == "get" ? (*r)["value"] : *r);
        return kOk;
    }
    if (op == "delete") {
        std::printf("deleted %s\n", args->positional[1].c_str());
    } else if (op == "list") {
        Table t({"KEY", "VALUE", "UPDATED"});
        for (const json& e : *r)
            t.add({cell(e.value("key", json())), truncate(e.value("value", json()).dump(), 100),
                   relative_time(e.value("updated_at", json()))});
        t.print();
    } else {
        std::printf("%s\n", (*r)["value"].dump().c_str());
    }
    return kOk;
}

} // namespace luaflow::ctl
