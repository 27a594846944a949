// luaflowctl validate / test (run as luaflowd --offline): the loader and the engine, in one process,
// without a daemon.
#include "daemon/offline.hpp"

#include "common/log.hpp"
#include "daemon/engine.hpp"
#include "daemon/schedule/check.hpp"
#include "daemon/store/db.hpp"
#include "scripting/workflow_loader.hpp"

#include <cstdio>
#include <filesystem>

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

json error_json(const scripting::LoadError& e) {
    return {{"file", e.file}, {"line", e.line}, {"message", e.message}};
}

std::string directory_of(const std::string& file) {
    fs::path p = fs::absolute(file).parent_path();
    return p.string();
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

json validate(const std::vector<std::string>& files) {
    json errors = json::array();
    for (const scripting::LoadError& e : load_errors(files, nullptr))
        errors.push_back(error_json(e));
    return {{"ok", errors.empty()}, {"errors", errors}};
}

json test(const std::string& file, const json& input, const json& input_strings) {
    std::string tmpl = (fs::temp_directory_path() / "luaflow-test-XXXXXX").string();
    if (!::mkdtemp(tmpl.data()))
        return {{"ok", false},
                {"errors", json::array({{{"file", file},
                                         {"line", 0},
                                         {"message", "cannot create a temporary state directory"}}})},
                {"report", nullptr}};
    std::string state = tmpl;
    json result;
    uv_loop_t loop;
    uv_loop_init(&loop);
    {
        config::Config cfg;
        cfg.notifiers_known = false;
        cfg.state = state;
        cfg.workflows = directory_of(file);
        auto db = store::Db::open(state + "/luaflow.db");
        if (!db) {
            result = {
                {"ok", false},
                {"errors", json::array({{{"file", file}, {"line", 0}, {"message", db.error().message}}})},
                {"report", nullptr}};
        } else {
            Engine engine(&loop, **db, cfg);
            engine.outbox.record_only(); // SPEC 13: notifications are in the report, never sent
            registry::Registry& registry = engine.registry;
            exec::Executor& executor = engine.executor;
            auto id = registry.load_only(file);
            if (!id) {
                const auto& entry = registry.all().begin()->second;
                json errs = json::array();
                if (entry.error)
                    errs.push_back(error_json(*entry.error));
                else
                    errs.push_back({{"file", file}, {"line", 0}, {"message", id.error().message}});
                result = {{"ok", false}, {"errors", errs}, {"report", nullptr}};
            } else {
                exec::SubmitRequest req;
                req.workflow = *id;
                req.input = input.is_null() ? json::object() : input;
                req.input_strings = input_strings.is_null() ? json::object() : input_strings;
                auto exec_id = executor.submit(req);
                if (!exec_id) {
                    result = {
                        {"ok", false},
                        {"errors",
                         json::array({{{"file", file}, {"line", 0}, {"message", exec_id.error().message}}})},
                        {"report", nullptr}};
                } else {
                    json report;
                    (void)executor.when_finished(*exec_id, [&](const json& r) {
                        report = r;
                        uv_stop(&loop);
                    });
                    uv_run(&loop, UV_RUN_DEFAULT);
                    (**db).flush();
                    bool ok = report.is_object() && report.value("status", "") == "succeeded";
                    result = {{"ok", ok}, {"errors", json::array()}, {"report", report}};
                }
            }
            (**db).flush();
        }
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    std::error_code ec;
    fs::remove_all(state, ec);
    return result;
}

int run(const std::vector<std::string>& args) {
    // The document is the answer; the engine's routine lines would only be noise around it.
    log::set_min_level(log::Level::warning);
    json doc;
    if (args[0] == "validate" && args.size() >= 2) {
        doc = validate(std::vector<std::string>(args.begin() + 1, args.end()));
    } else if (args[0] == "test" && args.size() >= 2 && args.size() <= 4) {
        json input = args.size() >= 3 ? json::parse(args[2], nullptr, false) : json::object();
        json strings = args.size() >= 4 ? json::parse(args[3], nullptr, false) : json::object();
        if (!input.is_object() || !strings.is_object()) {
            std::fprintf(stderr,
                         "luaflowd --offline test: the input and the input strings must be JSON objects\n");
            return 2;
        }
        doc = test(args[1], input, strings);
    } else {
        std::fprintf(
            stderr,
            "luaflowd --offline: expected validate FILE... or test FILE [INPUT_JSON [INPUT_STRINGS_JSON]]\n");
        return 2;
    }
    std::string text = doc.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
}

} // namespace luaflow::offline
