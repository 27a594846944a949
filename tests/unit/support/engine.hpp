#pragma once
// A real engine for unit tests: a loop, a store in a temp directory, a registry over a workflows
// directory written by the test, and the executor (STYLE 2.11: a real loop and a real SQLite file).
#include "daemon/engine.hpp"
#include "tests/unit/support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>

namespace luaflow::testing {

using nlohmann::json;

struct TestEngine {
    testing::TempDir dir;
    config::Config cfg;
    uv_loop_t loop;
    std::unique_ptr<store::Db> db;
    std::unique_ptr<luaflow::Engine> engine;
    scripting::RunQueue* scheduler = nullptr;
    registry::Registry* registry = nullptr;
    exec::Executor* executor = nullptr;

    using Files = std::map<std::string, std::string>;
    explicit TestEngine(Files files, std::map<std::string, int> queues = {}) {
        cfg.state = dir.path();
        cfg.workflows = dir.file("workflows");
        for (auto& [q, n] : queues)
            cfg.queues[q].concurrency = n;
        std::filesystem::create_directories(cfg.workflows);
        for (auto& [name, text] : files)
            std::ofstream(cfg.workflows + "/" + name) << text;
        uv_loop_init(&loop);
        db = std::move(store::Db::open(dir.file("luaflow.db")).value());
        engine = std::make_unique<luaflow::Engine>(&loop, *db, cfg);
        scheduler = &engine->tasks;
        registry = &engine->registry;
        executor = &engine->executor;
        auto report = registry::first_load(*registry, &loop);
        for (auto& e : report.errors)
            FAIL(e.to_string());
    }
    ~TestEngine() {
        engine.reset();
        uv_run(&loop, UV_RUN_DEFAULT);
        db.reset();
        uv_loop_close(&loop);
    }
    json run(const std::string& workflow, json input = json::object()) {
        exec::SubmitRequest req;
        req.workflow = workflow;
        req.input = std::move(input);
        auto id = executor->submit(req);
        REQUIRE_MESSAGE(id, id.error().message);
        json report;
        REQUIRE(executor->when_finished(*id, [&](const exec::EndReport& r) { report = r.doc(); }));
        while (report.is_null())
            uv_run(&loop, UV_RUN_ONCE);
        return report;
    }
};

} // namespace luaflow::testing
