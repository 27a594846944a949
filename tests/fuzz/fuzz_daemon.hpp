#pragma once
// A daemon for the request fuzzers (the control socket, HTTP): a real store, registry, executor and
// scheduler on a loop that the fuzz target runs itself, with the control handlers' Context over them, as
// in luaflowd. Its workflows are quick: every execution a request starts ends within milliseconds, so a
// `wait`, a `?wait=` or a `logs --follow` is answered well before a target's bound.
#include "daemon/control/handlers.hpp"
#include "daemon/engine.hpp"
#include "daemon/schedule/scheduler.hpp"
#include "daemon/store/db.hpp"
#include "tests/fuzz/fuzz_support.hpp"

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

namespace luaflow::fuzz {

inline const char* const kDaemonWorkflows[][2] = {
    {"h.lua", R"(return workflow { actions = { a = { run = function(ctx) return { n = 1 } end } } })"},
    {"inputs.lua", R"(return workflow {
  input = { n = { type = "number", default = 1 }, s = { type = "string", required = false } },
  actions = {
    first = { run = function(ctx) log.info("n=" .. tostring(ctx.input.n)); kv.set("k", ctx.input.n) end },
    second = { needs = { "first" }, run = function(ctx) error("second fails") end },
  },
})"},
    {"daily.lua", R"(return workflow {
  schedule = { rrule = "FREQ=DAILY;BYHOUR=9;BYMINUTE=0", tz = "Europe/Berlin" },
  actions = { a = { run = function() end } },
})"},
    {"hook.lua", R"(return workflow {
  triggers = { manual = false, webhook = { respond = "reply" } },
  actions = {
    parse = { run = function(ctx) return ctx.input end },
    reply = { needs = { "parse" }, run = function(ctx) return { got = ctx.outputs.parse } end },
  },
})"},
    {"signed.lua", R"(return workflow {
  triggers = { webhook = { secret = "k3y" } },
  actions = { got = { run = function(ctx) return ctx.input end } },
})"},
};

struct Daemon {
    testing::TempDir dir;
    config::Config cfg;
    uv_loop_t loop;
    std::unique_ptr<store::Db> db;
    std::unique_ptr<Engine> engine;
    registry::Registry* registry = nullptr;
    exec::Executor* executor = nullptr;
    std::unique_ptr<schedule::Scheduler> scheduler;
    std::unique_ptr<store::Reader> reader;
    std::unique_ptr<control::Context> ctx;

    Daemon() {
        quiet_process();
        cfg.state = dir.path();
        cfg.workflows = dir.file("workflows");
        std::filesystem::create_directories(cfg.workflows);
        for (const auto& [name, text] : kDaemonWorkflows)
            std::ofstream(cfg.workflows + "/" + name) << text;
        uv_loop_init(&loop);
        db = std::move(store::Db::open(dir.file("luaflow.db")).value());
        engine = std::make_unique<Engine>(&loop, *db, cfg);
        reader = std::make_unique<store::Reader>(&loop, dir.file("luaflow.db"));
        registry = &engine->registry;
        executor = &engine->executor;
        for (const auto& e : registry::first_load(*registry, &loop).errors)
            violated("a fuzz workflow does not load: " + e.to_string());
        scheduler = std::make_unique<schedule::Scheduler>(&loop, *db, *registry, *executor);
        scheduler->start();
        ctx = std::make_unique<control::Context>(control::Context{
            &loop, *db, *reader, *registry, *executor, *scheduler, engine->outbox, uv_hrtime(),
            [this](registry::Registry::ReloadDone done) { registry->reload(true, std::move(done)); }});
    }
};

} // namespace luaflow::fuzz
