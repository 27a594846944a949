// The Lua runner (exec/lua_runner): one attempt of a `run` action, a `when` check or a `cmd`'s templates,
// as a coroutine in the workflow's own state, on a real loop. Driven without the engine: a workflow
// loaded from text, its action's AttemptSpec, the run queue, and the report.
#include "daemon/exec/lua_runner.hpp"

#include "scripting/task.hpp"
#include "scripting/workflow_loader.hpp"
#include "stdlib/stdlib.hpp"
#include "tests/unit/support/test_loop.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

using namespace luaflow;
using exec::AttemptResult;
using nlohmann::json;

namespace {

class NullServices final : public stdlib::Services {
  public:
    explicit NullServices(uv_loop_t* loop) : loop_(loop) {}
    uv_loop_t* loop() override { return loop_; }
    void log_line(const scripting::Task*, const std::string&, stdlib::LogLevel, const std::string&) override {
    }

  private:
    uv_loop_t* loop_;
};

struct Fixture {
    testing::Loop l;
    NullServices services{&l.uv};
    scripting::RunQueue queue{&l.uv};
    exec::LuaRunner runner{queue};
    std::shared_ptr<scripting::WorkflowDef> def;

    explicit Fixture(const std::string& source) {
        scripting::SandboxOptions o;
        o.memory_limit = 8u << 20;
        o.workflows_dir = "/nonexistent";
        o.install_globals = [this](lua_State* L, int env) { stdlib::install(L, env, services, "wf"); };
        auto loaded = scripting::load_workflow("wf", "wf.lua", source, o);
        if (auto* e = std::get_if<scripting::LoadError>(&loaded)) FAIL(e->to_string());
        def = std::get<std::shared_ptr<scripting::WorkflowDef>>(loaded);
    }
    ~Fixture() { def.reset(); }

    exec::AttemptSpec spec(const std::string& action, json input = json::object()) {
        exec::AttemptSpec s;
        s.def = def;
        s.code = def->code;
        auto index = def->action_index(action);
        REQUIRE(index);
        s.action = *index;
        s.execution = "exec-1";
        s.trigger = exec::freeze({{"type", "manual"}});
        s.input = exec::freeze(std::move(input));
        s.shared = exec::frozen_object();
        return s;
    }

    // Starts an attempt of `action` and turns the loop until it reports.
    AttemptResult run(exec::AttemptSpec s) {
        std::optional<AttemptResult> result;
        auto attempt = runner.run(s, [&](AttemptResult r) { result = std::move(r); });
        attempt->start();
        REQUIRE(l.run_until([&] { return result.has_value(); }, 10'000));
        return std::move(*result);
    }
};

} // namespace

TEST_CASE("an attempt that returns a value succeeds with it as its output, from the ctx it was given") {
    Fixture f(R"(return workflow { actions = {
  sum = { config = { unit = "kg" }, run = function(ctx)
    return { total = ctx.input.a + ctx.input.b, unit = ctx.config.unit, execution = ctx.execution.id,
             workflow = ctx.execution.workflow, attempt = ctx.execution.attempt }
  end },
} })");
    auto s = f.spec("sum", {{"a", 1}, {"b", 2}});
    s.attempt = 2;
    AttemptResult r = f.run(s);
    CHECK(r.kind == AttemptResult::Kind::succeeded);
    CHECK(r.error.empty());
    CHECK(r.output ==
          json{{"total", 3}, {"unit", "kg"}, {"execution", "exec-1"}, {"workflow", "wf"}, {"attempt", 2}});
    CHECK(r.shared_changes == json::object());
}

TEST_CASE("an attempt that waits reports only once its wait is over") {
    Fixture f(R"(return workflow { actions = {
  a = { run = function(ctx) sleep(0.02) return "slept" end },
} })");
    std::optional<AttemptResult> result;
    auto attempt = f.runner.run(f.spec("a"), [&](AttemptResult r) { result = std::move(r); });
    attempt->start();
    CHECK_FALSE(result); // it yielded at sleep
    REQUIRE(f.l.run_until([&] { return result.has_value(); }, 10'000));
    CHECK(result->kind == AttemptResult::Kind::succeeded);
    CHECK(result->output == "slept");
}

TEST_CASE("an attempt that raises fails with the error's message") {
    Fixture f(R"(return workflow { actions = {
  a = { run = function(ctx) error("bad row " .. ctx.input.row) end },
} })");
    AttemptResult r = f.run(f.spec("a", {{"row", 12}}));
    CHECK(r.kind == AttemptResult::Kind::failed);
    CHECK(r.error.find("bad row 12") != std::string::npos);
    CHECK(r.output.is_null());
}

TEST_CASE("an attempt reports the ctx.shared keys it changed, removed ones as null, and its ctx.node") {
    Fixture f(R"(return workflow { actions = {
  a = { run = function(ctx)
    ctx.shared.changed = ctx.shared.changed + 1
    ctx.shared.dropped = nil
    ctx.shared.added = "new"
    ctx.node.step = "done"
  end },
} })");
    auto s = f.spec("a");
    s.shared = exec::freeze({{"kept", 1}, {"changed", 2}, {"dropped", 3}});
    AttemptResult r = f.run(s);
    CHECK(r.kind == AttemptResult::Kind::succeeded);
    CHECK(r.output.is_null()); // it returned nothing
    CHECK(r.shared_changes == json{{"changed", 3}, {"dropped", nullptr}, {"added", "new"}});
    REQUIRE(r.node);
    CHECK(*r.node == json{{"step", "done"}});
}

TEST_CASE("an output that cannot be encoded fails the attempt, naming the output") {
    Fixture f(R"(return workflow { actions = {
  a = { run = function(ctx) return { ok = true, fn = function() end } end },
} })");
    AttemptResult r = f.run(f.spec("a"));
    CHECK(r.kind == AttemptResult::Kind::failed);
    CHECK(r.error.find("output.fn: cannot encode a function") != std::string::npos);
}

TEST_CASE("a when check decides by Lua's truth, and one that raises fails without a decision") {
    Fixture f(R"(return workflow { actions = {
  a = { when = function(ctx) if ctx.input.raise then error("when broke") end return ctx.input.go end,
        run = function() end },
} })");
    struct Case {
        json input;
        std::optional<bool> decision;
    };
    // 0 is true in Lua; only nil and false are not.
    std::vector<Case> cases = {{{{"go", true}}, true},
                               {{{"go", false}}, false},
                               {json::object(), false},
                               {{{"go", 0}}, true},
                               {{{"raise", true}}, std::nullopt}};
    for (const Case& c : cases) {
        CAPTURE(c.input.dump());
        bool reported = false;
        std::optional<bool> decision;
        AttemptResult failure;
        auto check =
            f.runner.check_when(f.spec("a", c.input), [&](std::optional<bool> run_it, AttemptResult r) {
                reported = true;
                decision = run_it;
                failure = std::move(r);
            });
        check->start();
        REQUIRE(f.l.run_until([&] { return reported; }, 10'000));
        CHECK(decision == c.decision);
        if (c.decision) {
            CHECK(failure.kind == AttemptResult::Kind::succeeded);
        } else {
            CHECK(failure.kind == AttemptResult::Kind::failed);
            CHECK(failure.error.find("when broke") != std::string::npos);
        }
    }
}

TEST_CASE("an attempt still waiting at its timeout ends timed out, naming the timeout, with its ctx.node") {
    Fixture f(R"(return workflow { actions = {
  a = { run = function(ctx) ctx.node.phase = "before the wait" sleep(10) return "too late" end },
} })");
    auto s = f.spec("a");
    s.timeout = 50;
    std::uint64_t t0 = uv_hrtime();
    AttemptResult r = f.run(s);
    CHECK((uv_hrtime() - t0) / 1'000'000 < 5'000);
    CHECK(r.kind == AttemptResult::Kind::timed_out);
    CHECK(r.error == "timed out after 50ms");
    REQUIRE(r.node);
    CHECK(*r.node == json{{"phase", "before the wait"}});
}

TEST_CASE("an attempt that never waits is stopped at its timeout") {
    Fixture f(R"(return workflow { actions = {
  spin = { run = function(ctx) while true do end end },
} })");
    auto s = f.spec("spin");
    s.timeout = 100;
    AttemptResult r = f.run(s);
    CHECK(r.kind == AttemptResult::Kind::timed_out);
    CHECK(r.error == "timed out after 100ms");
}

TEST_CASE("a cancelled attempt never reports, even once its wait would have ended") {
    Fixture f(R"(return workflow { actions = {
  a = { run = function(ctx) sleep(0.02) return "should not be seen" end },
} })");
    auto s = f.spec("a");
    s.timeout = 60'000;
    bool reported = false;
    auto attempt = f.runner.run(s, [&](AttemptResult) { reported = true; });
    attempt->start();
    attempt->cancel();
    // The loop ends once nothing is left to wait for: the sleep and the timeout are gone with the attempt's
    // cancel. A sleep left running would report after 20 ms, a timeout left armed would keep the loop a
    // minute.
    bool stopped = false;
    loop::Timer stopper(&f.l.uv);
    stopper.start(5'000, [&] {
        stopped = true;
        uv_stop(&f.l.uv);
    });
    stopper.unref();
    uv_run(&f.l.uv, UV_RUN_DEFAULT);
    CHECK_FALSE(reported);
    CHECK_FALSE(stopped);
}

TEST_CASE("a cmd's {{ }} templates are filled from ctx into the argv") {
    Fixture f(R"(return workflow { actions = {
  c = { cmd = { "convert", "{{ input.file }}", "--attempt={{ execution.attempt }}", "literal {x}" } },
} })");
    auto s = f.spec("c", {{"file", "in put.png"}});
    s.attempt = 3;
    std::optional<AttemptResult> result;
    auto attempt = f.runner.expand_argv(s, [&](AttemptResult r) { result = std::move(r); });
    attempt->start();
    REQUIRE(f.l.run_until([&] { return result.has_value(); }, 10'000));
    CHECK(result->kind == AttemptResult::Kind::succeeded);
    CHECK(result->output == json{"convert", "in put.png", "--attempt=3", "literal {x}"});
}

TEST_CASE("ctx.execution holds what execution_json gives a cmd job in LUAFLOW_INPUT") {
    Fixture f(R"(return workflow { actions = { a = { run = function(ctx) return ctx.execution end } } })");
    auto s = f.spec("a");
    s.attempt = 3;
    s.scheduled_for = 1'805'101'200'000;
    s.scheduled_tz = "Europe/Berlin";
    json expected = exec::execution_json(s);
    AttemptResult r = f.run(s);
    REQUIRE(r.kind == AttemptResult::Kind::succeeded);
    CHECK(r.output == expected);
}
