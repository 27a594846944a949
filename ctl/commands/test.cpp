// test: run a workflow once, or a workflows directory's test cases, without the daemon (SPEC 13), in
// luaflowd --offline.
#include "common/time_format.hpp"
#include "ctl/commands/commands.hpp"
#include "ctl/junit.hpp"
#include "ctl/offline_runner.hpp"
#include "ctl/table.hpp"

#include <cstdio>
#include <filesystem>

namespace luaflow::ctl {

namespace fs = std::filesystem;

namespace {

constexpr const char* kTestUsage = "test FILE [--input JSON | --input-file FILE] [-i KEY=VALUE]... "
                                   "[--mock ACTION=JSON|error:MESSAGE]... [--at TIME] [--fast] [-c CONFIG]\n"
                                   "       luaflowctl test [--junit FILE] [-c CONFIG] [DIR | CASE_FILE]";

bool is_case_file(const std::string& path) {
    const std::string suffix = ".test.lua";
    return path.size() > suffix.size() &&
           path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0;
}

int run_file(const Invocation& inv, const Args& args, const std::string& file) {
    int rc = kOk;
    auto input = parse_input(inv, args, kTestUsage, rc);
    if (!input) return rc;
    json request = {{"command", "test"},
                    {"file", file},
                    {"config", config_file_option(args)},
                    {"input", input->input},
                    {"input_strings", input->strings},
                    {"fast", args.has("--fast")}};
    json mocks = json::object();
    for (const auto& [option, value] : args.options) {
        if (option != "--mock") continue;
        std::size_t eq = value.find('=');
        if (eq == std::string::npos || eq == 0)
            return usage_error("test: --mock takes ACTION=JSON or ACTION=error:MESSAGE, not '" + value + "'",
                               kTestUsage);
        std::string action = value.substr(0, eq), text = value.substr(eq + 1);
        if (text.rfind("error:", 0) == 0) {
            mocks[action] = text;
            continue;
        }
        json output = json::parse(text, nullptr, false);
        if (output.is_discarded())
            return usage_error("test: --mock " + action +
                                   ": not JSON (for a failure write error:MESSAGE): " + text,
                               kTestUsage);
        mocks[action] = std::move(output);
    }
    request["mocks"] = mocks;
    if (auto at = args.value("--at")) {
        if (!parse_rfc3339(*at))
            return usage_error("test: --at: not an RFC 3339 time (like 2026-03-29T02:30:00+01:00): " + *at,
                               kTestUsage);
        request["at"] = *at;
    }
    auto doc_or = run_offline(request, rc);
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

int run_cases(const Invocation& inv, const Args& args, const std::string& path) {
    for (const char* only_for_file : {"--input", "--input-file", "-i", "--mock", "--at"})
        if (args.value(only_for_file))
            return usage_error(std::string("test: ") + only_for_file +
                                   " is for test FILE; a test case gives its own (input, mocks, at)",
                               kTestUsage);
    if (args.has("--fast"))
        return usage_error("test: --fast is for test FILE; a test case asks for it with fast = true",
                           kTestUsage);
    json config = config_file_option(args);
    if (path.empty() && config.is_null())
        return usage_error("test: name the workflows directory (there is no config to take it from)",
                           kTestUsage);
    int rc = kOk;
    json request = {{"command", "cases"}, {"config", config}};
    if (!path.empty()) request["path"] = fs::absolute(path).string();
    auto doc_or = run_offline(request, rc);
    if (!doc_or) return rc;
    json doc = std::move(*doc_or);
    const json errors = doc.value("errors", json::array());
    if (auto junit = args.value("--junit")) {
        if (auto written = write_junit(*junit, doc); !written) {
            std::fprintf(stderr, "luaflowctl: test: %s\n", written.error().message.c_str());
            return kFailed;
        }
    }
    int failed = 0;
    const json cases = doc.value("cases", json::array());
    for (const json& c : cases)
        if (!c.value("ok", false)) ++failed;
    int code = !errors.empty() ? kUsage : failed ? kFailed : kOk;
    if (inv.json) {
        print_json(doc);
        return code;
    }
    for (const json& c : cases) {
        std::string what = cell(c.value("workflow", json())) + ": " + cell(c.value("name", json()));
        std::string ms = "(" + std::to_string(c.value("duration_ms", 0)) + " ms)";
        if (c.value("ok", false)) {
            std::printf("%s    %s  %s\n", status_text("ok").c_str(), what.c_str(), dim(ms).c_str());
            continue;
        }
        const json f = c.value("failures", json::array());
        std::string first = f.empty() ? std::string("failed") : cell(f[0]);
        if (f.size() > 1) first += " (and " + std::to_string(f.size() - 1) + " more)";
        std::printf("%s  %s: %s\n", red("FAIL").c_str(), what.c_str(), first.c_str());
    }
    print_load_errors(errors);
    std::printf("%zu %s, %d failed%s\n", cases.size(), cases.size() == 1 ? "case" : "cases", failed,
                errors.empty() ? ""
                               : (", " + std::to_string(errors.size()) + " broken test " +
                                  (errors.size() == 1 ? "file" : "files"))
                                     .c_str());
    return code;
}

} // namespace

int cmd_test(const Invocation& inv) {
    int rc = kOk;
    std::vector<std::string> values = input_options();
    for (const char* o : {"--mock", "--at", "-c", "--config", "--junit"})
        values.push_back(o);
    const Syntax syntax = {kTestUsage, values, {"--fast"}, 0, 1};
    auto args = parse_args(inv, syntax, rc);
    if (!args) return rc;
    std::string path = args->positional.empty() ? std::string() : args->positional[0];
    std::error_code ec;
    if (path.empty() || fs::is_directory(path, ec) || is_case_file(path)) return run_cases(inv, *args, path);
    if (args->value("--junit"))
        return usage_error("test: --junit is for test cases (test DIR), not for test FILE", kTestUsage);
    return run_file(inv, *args, path);
}

} // namespace luaflow::ctl
