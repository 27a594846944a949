// run: start an execution; with --wait print its report, with --follow its log lines and then its report.
#include "ctl/commands/commands.hpp"
#include "ctl/table.hpp"

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>

namespace luaflow::ctl {

namespace {

const Syntax kRun = {"run WF [--input JSON | --input-file FILE] [-i KEY=VALUE]... [--wait] [--follow]",
                     {"--input", "--input-file", "-i"},
                     {"--wait", "--follow"},
                     1,
                     1};

// The text of --input-file; "-" reads standard input.
std::optional<std::string> read_input_file(const std::string& path) {
    if (path == "-") return std::string(std::istreambuf_iterator<char>(std::cin), {});
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// The run params: "input" from --input or --input-file, and the raw -i strings in "input_strings",
// which the daemon converts to the types the workflow declares (luaflowctl does not know them).
std::optional<json> run_params(const Args& args, int& rc) {
    json input = json::object();
    std::optional<std::string> text = args.value("--input");
    std::string what = "--input";
    if (auto file = args.value("--input-file")) {
        if (text) {
            rc = usage_error("run: give --input or --input-file, not both", kRun.usage);
            return std::nullopt;
        }
        text = read_input_file(*file);
        what = "--input-file " + *file;
        if (!text) {
            rc = usage_error("run: cannot read --input-file " + *file);
            return std::nullopt;
        }
    }
    if (text) {
        auto parsed = parse_json_object(*text, what, rc);
        if (!parsed) return std::nullopt;
        input = std::move(*parsed);
    }
    json strings = json::object();
    for (const auto& [option, value] : args.options) {
        if (option != "-i") continue;
        size_t eq = value.find('=');
        if (eq == std::string::npos || eq == 0) {
            rc = usage_error("run: -i needs KEY=VALUE, got '" + value + "'", kRun.usage);
            return std::nullopt;
        }
        strings[value.substr(0, eq)] = value.substr(eq + 1); // a later -i for the same KEY wins
    }
    return json{{"workflow", args.positional[0]},
                {"input", std::move(input)},
                {"input_strings", std::move(strings)},
                {"wait", args.has("--wait") && !args.has("--follow")}};
}

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
    auto params = run_params(*args, rc);
    if (!params) return rc;
    Client client(socket_path(inv.socket));
    Reply r = client.call("run", *params);
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
