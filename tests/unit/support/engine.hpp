#pragma once
// A real engine for unit tests: a loop, a store in a temp directory, a registry over a workflows
// directory written by the test, and the executor (STYLE 2.11: a real loop and a real SQLite file).
#include "daemon/app.hpp"
#include "daemon/exec/executor.hpp"
#include "daemon/store/commit_pump.hpp"
#include "tests/unit/support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>

namespace luaflow::testing {

using nlohmann::json;

struct Engine {
    testing::TempDir dir;
    config::Config cfg;
    uv_loop_t loop;
    std::unique_ptr<store::Db> db;
    std::unique_ptr<store::CommitPump> pump;
    std::unique_ptr<scripting::TaskScheduler> scheduler;
    stdlib::Services* services = nullptr;
    std::unique_ptr<registry::Registry> registry;
    std::unique_ptr<exec::Executor> executor;

    using Files = std::map<std::string, std::string>;
    explicit Engine(Files files, std::map<std::string, int> queues = {}) {
        cfg.state = dir.path();
        cfg.workflows = dir.file("workflows");
        for (auto& [q, n] : queues)
            cfg.queues[q].concurrency = n;
        std::filesystem::create_directories(cfg.workflows);
        for (auto& [name, text] : files)
            std::ofstream(cfg.workflows + "/" + name) << text;
        uv_loop_init(&loop);
        db = std::move(store::Db::open(dir.file("luaflow.db")).value());
        pump = std::make_unique<store::CommitPump>(&loop, *db);
        scheduler = std::make_unique<scripting::TaskScheduler>(&loop);
        registry =
            std::make_unique<registry::Registry>(&loop, *db, cfg.workflows, [this](const std::string& id) {
                return sandbox_options(cfg, *services, id);
            });
        executor = std::make_unique<exec::Executor>(&loop, *db, *registry, *scheduler, cfg);
        services = executor.get();
        auto report = registry::first_load(*registry, &loop);
        for (auto& e : report.errors)
            FAIL(e.to_string());
    }
    ~Engine() {
        executor.reset();
        registry.reset();
        scheduler.reset();
        pump.reset();
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
        REQUIRE(executor->when_finished(*id, [&](const json& r) { report = r; }));
        while (report.is_null())
            uv_run(&loop, UV_RUN_ONCE);
        return report;
    }
};

} // namespace luaflow::testing
