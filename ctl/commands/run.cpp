// run: start an execution; with --wait print its report, with --follow its log lines and then its report.
#include "ctl/commands/commands.hpp"
#include "ctl/table.hpp"

#include <cstdio>

namespace luaflow::ctl {

namespace {

const Syntax kRun = {"run WF [--input JSON | --input-file FILE] [-i KEY=VALUE]... [--wait] [--follow]",
                     input_options(),
                     {"--wait", "--follow"},
                     1,
                     1};

void print_outcome(const Invocation& inv, const json& report) {
    if (inv.json)
        print_json(report);
    else
        print_report(report);
}

// Streams the execution's log lines until it ends, then prints its report on the same connection.
int follow(const Invocation& inv, Client& client, const std::string& id) {
    Reply logs = client.call("logs", {{"execution", id}, {"follow", true}},
                             [&](const json& line) { print_log_event(inv, line); });
    if (!logs) return report(logs.error());
    // "wait" answers only once the execution has ended, so the report printed is the final one.
    Reply final_report = client.call("wait", {{"execution", id}});
    if (!final_report) return report(final_report.error());
    if (!inv.json) std::printf("\n");
    print_outcome(inv, *final_report);
    return exit_for_report(*final_report);
}

} // namespace

int exit_for_report(const json& report) {
    return report.is_object() && report.value("status", "") == "succeeded" ? kOk : kFailed;
}

int cmd_run(const Invocation& inv) {
    int rc = kOk;
    auto args = parse_args(inv, kRun, rc);
    if (!args) return rc;
    auto input = parse_input(inv, *args, kRun.usage, rc);
    if (!input) return rc;
    // The daemon converts input_strings to the types the workflow declares (luaflowctl does not know them).
    json params = {{"workflow", args->positional[0]},
                   {"input", std::move(input->input)},
                   {"input_strings", std::move(input->strings)},
                   {"wait", args->has("--wait") && !args->has("--follow")}};
    Client client(socket_path(inv.socket));
    Reply r = client.call("run", params);
    if (!r) return report(r.error());
    if (args->has("--follow")) return follow(inv, client, cell(r->value("id", json())));
    if (args->has("--wait")) {
        print_outcome(inv, *r);
        return exit_for_report(*r);
    }
    if (inv.json)
        print_json(*r);
    else
        std::printf("%s\n", cell(r->value("id", json())).c_str()); // the bare id, for id=$(luaflowctl run WF)
    return kOk;
}

} // namespace luaflow::ctl
