// luaflowctl validate / test (run as luaflowd --offline): the loader and the engine, in one process,
// without a daemon.
#include "daemon/offline.hpp"

#include "common/log.hpp"
#include "daemon/engine.hpp"
#include "daemon/schedule/check.hpp"
#include "daemon/test_run.hpp"
#include "daemon/testing/case_file.hpp"
#include "daemon/testing/expectations.hpp"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>

namespace luaflow::offline {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

class QuietServices final : public stdlib::Services {
  public:
    explicit QuietServices(uv_loop_t* loop) : loop_(loop) {}
    uv_loop_t* loop() override { return loop_; }
    void log_line(const scripting::Task*, const std::string&, stdlib::LogLevel, const std::string&) override {
    }

  private:
    uv_loop_t* loop_;
};

json error_json(const std::string& file, int line, const std::string& message) {
    return {{"file", file}, {"line", line}, {"message", message}};
}

json error_json(const scripting::LoadError& e) {
    return error_json(e.file, e.line, e.message);
}

std::string directory_of(const std::string& file) {
    return fs::absolute(file).parent_path().lexically_normal().string();
}

// The config a request names; nullopt without one. A config that does not load is an error naming it.
struct ConfigOrError {
    std::optional<config::Config> config;
    std::optional<json> error;
};

ConfigOrError read_config(const json& request) {
    ConfigOrError out;
    if (!request.contains("config") || !request["config"].is_string()) return out;
    std::string path = request["config"];
    auto cfg = config::load_config(path, fs::current_path().string());
    if (!cfg) {
        out.error = error_json(path, 0, cfg.error().message);
        return out;
    }
    out.config = std::move(*cfg);
    return out;
}

json validate(const json& request) {
    json errors = json::array();
    ConfigOrError cfg = read_config(request);
    if (cfg.error) return {{"ok", false}, {"errors", json::array({*cfg.error})}};
    std::vector<std::string> files;
    for (const json& f : request.value("files", json::array()))
        if (f.is_string()) files.push_back(f);
    for (const std::string& f : files) {
        std::optional<config::Config> c = cfg.config;
        if (c) c->workflows = directory_of(f); // lib/ and script files are the file's neighbours
        for (const scripting::LoadError& e : load_errors({f}, c ? &*c : nullptr))
            errors.push_back(error_json(e));
    }
    return {{"ok", errors.empty()}, {"errors", errors}};
}

std::map<std::string, exec::Mock> mocks_of(const std::map<std::string, testing::MockSpec>& specs) {
    std::map<std::string, exec::Mock> out;
    for (const auto& [action, m] : specs)
        out[action] = exec::Mock{m.output, m.error};
    return out;
}

// A log line as `luaflowctl logs` prints it, on stderr as it comes.
void print_log_line(const std::string&, const std::string& action, int attempt, const char* stream,
                    const std::string& line) {
    std::string t = format_rfc3339(now_unix_ms());
    std::string time_of_day = t.size() >= 23 ? t.substr(11, 12) : t;
    std::fprintf(stderr, "%s  %s#%d  %s  %s\n", time_of_day.c_str(), action.c_str(), attempt, stream,
                 line.c_str());
}

json test(const json& request) {
    ConfigOrError cfg = read_config(request);
    if (cfg.error) return {{"ok", false}, {"errors", json::array({*cfg.error})}, {"report", nullptr}};
    TestRun run;
    run.file = request.value("file", "");
    run.dir = directory_of(run.file);
    run.config = cfg.config ? &*cfg.config : nullptr;
    run.input = request.value("input", json::object());
    run.input_strings = request.value("input_strings", json::object());
    std::map<std::string, testing::MockSpec> specs;
    const json mocks = request.value("mocks", json::object());
    for (auto it = mocks.begin(); mocks.is_object() && it != mocks.end(); ++it)
        specs[it.key()] = testing::mock_from(it.value());
    run.mocks = mocks_of(specs);
    if (request.contains("at") && request["at"].is_string()) {
        run.at = parse_rfc3339(request["at"].get<std::string>());
        if (!run.at)
            return {{"ok", false},
                    {"errors",
                     json::array({error_json(
                         run.file, 0, "--at: not an RFC 3339 time: " + request["at"].get<std::string>())})},
                    {"report", nullptr}};
    }
    run.fast = request.value("fast", false);
    run.echo = print_log_line;
    TestOutcome outcome = run_once(run);
    json errors = json::array();
    for (const scripting::LoadError& e : outcome.errors)
        errors.push_back(error_json(e));
    bool ok =
        errors.empty() && outcome.report.is_object() && outcome.report.value("status", "") == "succeeded";
    return {{"ok", ok}, {"errors", errors}, {"report", outcome.report}};
}

json run_case(const testing::TestCase& c, const std::string& dir, const config::Config* config) {
    auto started = std::chrono::steady_clock::now();
    TestRun run;
    run.file = dir + "/" + c.workflow + ".lua";
    run.dir = dir;
    run.config = config;
    run.input = c.input;
    run.mocks = mocks_of(c.mocks);
    run.at = c.at;
    run.fast = c.fast;
    std::vector<std::string> logs;
    run.echo = [&logs](const std::string&, const std::string&, int, const char*, const std::string& line) {
        logs.push_back(line);
    };
    std::vector<std::string> failures;
    if (!fs::exists(run.file)) {
        failures.push_back("there is no workflow '" + c.workflow + "' (" + run.file + ")");
    } else {
        TestOutcome outcome = run_once(run);
        if (!outcome.errors.empty()) {
            for (const scripting::LoadError& e : outcome.errors)
                failures.push_back("the workflow does not load: " + e.to_string());
        } else {
            failures = testing::check_expectations(c.expect, outcome.report, logs);
        }
    }
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    return {{"name", c.name},         {"workflow", c.workflow},
            {"file", c.file},         {"line", c.line},
            {"ok", failures.empty()}, {"duration_ms", static_cast<std::int64_t>(ms + 0.5)},
            {"failures", failures}};
}

json cases(const json& request) {
    ConfigOrError cfg = read_config(request);
    if (cfg.error) return {{"ok", false}, {"errors", json::array({*cfg.error})}, {"cases", json::array()}};
    std::string path = request.value("path", "");
    if (path.empty() && cfg.config) path = cfg.config->workflows;
    std::string dir;
    std::vector<std::string> files;
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
        dir = fs::absolute(path).lexically_normal().string();
        files = testing::case_files(dir);
    } else {
        // One case file: its workflows directory is the parent of its tests/.
        dir = fs::absolute(path).parent_path().parent_path().lexically_normal().string();
        files = {path};
    }
    json errors = json::array();
    json results = json::array();
    bool ok = true;
    for (const std::string& f : files) {
        auto read = testing::read_case_file(f);
        if (auto* broken = std::get_if<testing::CaseFileError>(&read)) {
            errors.push_back(error_json(broken->file, broken->line, broken->message));
            ok = false;
            continue;
        }
        for (const testing::TestCase& c : std::get<std::vector<testing::TestCase>>(read)) {
            json r = run_case(c, dir, cfg.config ? &*cfg.config : nullptr);
            ok = ok && r["ok"].get<bool>();
            results.push_back(std::move(r));
        }
    }
    if (files.empty())
        errors.push_back(error_json(dir + "/tests", 0, "no test cases here (tests/*.test.lua)"));
    return {{"ok", ok && errors.empty()}, {"errors", errors}, {"cases", results}};
}

} // namespace

std::vector<scripting::LoadError> load_errors(const std::vector<std::string>& files,
                                              const config::Config* config) {
    std::vector<scripting::LoadError> errors;
    uv_loop_t loop;
    uv_loop_init(&loop);
    {
        QuietServices services(&loop);
        for (const std::string& f : files) {
            config::Config cfg = config ? *config : config::Config{};
            if (!config) {
                cfg.workflows = directory_of(f);
                cfg.notifiers_known = false;
            }
            std::string id = fs::path(f).stem().string();
            auto r = scripting::load_workflow_file(f, sandbox_options(cfg, services, id),
                                                   schedule::check_schedule);
            // Every error of the file, in source order, the same on every run (SPEC 6).
            if (auto* err = std::get_if<scripting::LoadError>(&r))
                for (const scripting::LoadError& e : err->all())
                    errors.push_back(e);
        }
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return errors;
}

int run(const std::vector<std::string>& args) {
    // The document is the answer; the engine's routine lines would only be noise around it.
    log::set_min_level(log::Level::warning);
    json request;
    if (args.empty()) {
        std::string text;
        char buf[65536];
        for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, stdin)) > 0;)
            text.append(buf, n);
        request = json::parse(text, nullptr, false);
    } else if (args.size() == 1) {
        request = json::parse(args[0], nullptr, false);
    }
    std::string command = request.is_object() ? request.value("command", "") : "";
    // A test's story is its report and log lines; the engine's own lines about it (and about the other
    // workflows of the directory, loaded for workflows.run) would only repeat them.
    if (command == "test" || command == "cases")
        log::set_sink([](log::Level, const std::string&, const log::About&) { return true; });
    json doc;
    if (command == "validate") {
        doc = validate(request);
    } else if (command == "test" && request.value("file", "") != "") {
        doc = test(request);
    } else if (command == "cases") {
        doc = cases(request);
    } else {
        std::fprintf(stderr, "luaflowd --offline: expected one JSON request with \"command\": \"validate\", "
                             "\"test\" or \"cases\" (see luaflowd(8))\n");
        return 2;
    }
    std::string text = doc.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
}

} // namespace luaflow::offline
