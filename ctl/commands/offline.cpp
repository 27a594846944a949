// validate and test: offline, in this process, without a daemon.
#include "daemon/offline.hpp"
#include "ctl/commands/commands.hpp"
#include "ctl/table.hpp"

#include <cstdio>

namespace luaflow::ctl {

namespace {

void print_errors(const json& doc) {
    for (const auto& e : doc["errors"])
        std::printf("%s:%s: %s\n", cell(e["file"]).c_str(), cell(e["line"]).c_str(),
                    cell(e["message"]).c_str());
}

} // namespace

int cmd_validate(const Invocation& inv) {
    if (inv.args.empty()) return usage_error("validate needs at least one workflow file");
    json doc = offline::validate(inv.args);
    if (inv.json) {
        print_json(doc);
    } else {
        print_errors(doc);
        if (doc["ok"].get<bool>()) std::printf("ok: %zu file(s) valid\n", inv.args.size());
    }
    return doc["ok"].get<bool>() ? kOk : kFailed;
}

int cmd_test(const Invocation& inv) {
    std::string file;
    json input = json::object();
    for (size_t i = 0; i < inv.args.size(); ++i) {
        const std::string& a = inv.args[i];
        if (a == "--input") {
            if (i + 1 >= inv.args.size()) return usage_error("--input needs a JSON object");
            input = json::parse(inv.args[++i], nullptr, false);
            if (input.is_discarded() || !input.is_object())
                return usage_error("--input is not a JSON object");
        } else if (!a.empty() && a[0] == '-') {
            return usage_error("test: unknown option '" + a + "'");
        } else if (file.empty()) {
            file = a;
        } else {
            return usage_error("test takes one workflow file");
        }
    }
    if (file.empty()) return usage_error("test needs a workflow file");
    json doc = offline::test(file, input);
    if (inv.json) {
        print_json(doc);
    } else {
        print_errors(doc);
        if (doc["report"].is_object()) print_report(doc["report"]);
    }
    return doc["ok"].get<bool>() ? kOk : kFailed;
}

} // namespace luaflow::ctl
