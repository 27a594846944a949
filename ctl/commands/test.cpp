// test: run a workflow file once in a throwaway state directory (in luaflowd --offline); no daemon needed.
#include "ctl/commands/commands.hpp"
#include "ctl/offline_runner.hpp"
#include "ctl/table.hpp"

#include <cstdio>

namespace luaflow::ctl {

int cmd_test(const Invocation& inv) {
    int rc = kOk;
    const Syntax syntax = {
        "test FILE [--input JSON | --input-file FILE] [-i KEY=VALUE]...", input_options(), {}, 1, 1};
    auto args = parse_args(inv, syntax, rc);
    if (!args) return rc;
    auto input = parse_input(inv, *args, syntax.usage, rc);
    if (!input) return rc;
    auto doc_or = run_offline({"test", args->positional[0], input->input.dump(), input->strings.dump()}, rc);
    if (!doc_or) return rc;
    json doc = std::move(*doc_or);
    bool ok = doc.value("ok", false);
    if (inv.json) {
        print_json(doc);
        return ok ? kOk : kFailed;
    }
    print_load_errors(doc.value("errors", json::array()));
    json report = doc.value("report", json());
    if (report.is_object()) {
        print_report(report);
        std::printf("\n");
    }
    // One closing line, so that a long report still ends with the verdict.
    if (ok)
        std::printf("%s\n", status_text("ok").c_str());
    else if (report.is_object())
        std::printf("%s: execution %s\n", red("failed").c_str(),
                    cell(report.value("status", json())).c_str());
    else
        std::printf("%s: the workflow did not run\n", red("failed").c_str());
    return ok ? kOk : kFailed;
}

} // namespace luaflow::ctl
