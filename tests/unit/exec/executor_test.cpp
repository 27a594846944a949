// The executor on a real loop with a real store: graph order, skip propagation, the shared context,
// output conversion errors, queue limits and the execution timeout.
#include "daemon/store/executions.hpp"
#include "tests/unit/support/engine.hpp"

#include <doctest/doctest.h>

#include <fstream>

using namespace luaflow;
using nlohmann::json;
using testing::TestEngine;

namespace {

double seconds(const json& t) {
    auto v = parse_rfc3339(t.get<std::string>());
    return static_cast<double>(*v) / 1000.0;
}

} // namespace

TEST_CASE("actions run in graph order and see the outputs before them") {
    TestEngine e(TestEngine::Files{{"chain.lua", R"(
return workflow {
  actions = {
    c = { needs = { "b" }, run = function(ctx) return ctx.outputs.a + ctx.outputs.b end },
    a = { run = function() return 1 end },
    b = { needs = { "a" }, run = function(ctx) return ctx.outputs.a + 10 end },
  },
})"}});
    json r = e.run("chain");
    CHECK(r["status"] == "succeeded");
    CHECK(r["actions"]["c"]["output"] == 12);
    CHECK(seconds(r["actions"]["b"]["started_at"]) >= seconds(r["actions"]["a"]["finished_at"]));
}

TEST_CASE("a failed need skips its dependents unless always, and the execution fails") {
    TestEngine e(TestEngine::Files{{"f.lua", R"(
return workflow {
  actions = {
    bad = { run = function() error("no disk") end },
    dep = { needs = { "bad" }, run = function() return 1 end },
    cleanup = { needs = { "dep" }, always = true, run = function(ctx) return ctx.outputs.dep == nil end },
  },
})"}});
    json r = e.run("f");
    CHECK(r["status"] == "failed");
    CHECK(r["error"] == "action 'bad' failed");
    CHECK(r["actions"]["bad"]["error"].get<std::string>().find("no disk") != std::string::npos);
    CHECK(r["actions"]["dep"]["status"] == "skipped");
    CHECK(r["actions"]["cleanup"]["output"] == true);
}

TEST_CASE("parallel actions merge the shared keys they change; a failed attempt's changes are dropped") {
    TestEngine e(TestEngine::Files{{"s.lua", R"(
return workflow {
  context = { keep = 1, drop = 2 },
  actions = {
    x = { run = function(ctx) ctx.shared.x = "from x"; sleep(0.01); return true end },
    y = { run = function(ctx) ctx.shared.y = { 1, 2 }; ctx.shared.drop = nil; return true end },
    z = { run = function(ctx) ctx.shared.z = "never"; error("fails") end },
    after = { needs = { "x", "y" }, run = function(ctx) return ctx.shared end },
  },
})"}});
    json r = e.run("s");
    json expected = {{"keep", 1}, {"x", "from x"}, {"y", {1, 2}}};
    CHECK(r["actions"]["after"]["output"] == expected);
    CHECK(r["shared"] == expected);
}

TEST_CASE("an output that is not JSON fails the attempt naming the path") {
    TestEngine e(TestEngine::Files{{"o.lua", R"(
return workflow { actions = { a = { run = function() return { items = { 1, 2, print or function() end } } end } } })"}});
    json r = e.run("o");
    CHECK(r["actions"]["a"]["status"] == "failed");
    CHECK(r["actions"]["a"]["error"].get<std::string>().find("output.items[3]") != std::string::npos);
}

TEST_CASE("a queue's concurrency limits actions across executions") {
    TestEngine e(TestEngine::Files{{"q.lua", R"(
return workflow {
  concurrency = 10,
  actions = { a = { queue = "one", run = function(ctx) sleep(0.05); return true end } },
})"}},
                 {{"one", 1}});
    std::vector<std::string> ids;
    for (int i = 0; i < 3; ++i) {
        exec::SubmitRequest req;
        req.workflow = "q";
        ids.push_back(e.executor->submit(req).value());
    }
    int done = 0;
    std::vector<json> reports;
    for (auto& id : ids)
        REQUIRE(e.executor->when_finished(id, [&](const exec::EndReport& r) {
            reports.push_back(r.doc());
            ++done;
        }));
    while (done < 3)
        uv_run(&e.loop, UV_RUN_ONCE);
    std::vector<std::pair<double, double>> spans;
    for (auto& r : reports)
        spans.push_back(
            {seconds(r["actions"]["a"]["started_at"]), seconds(r["actions"]["a"]["finished_at"])});
    std::sort(spans.begin(), spans.end());
    for (size_t i = 1; i < spans.size(); ++i)
        CHECK(spans[i].first >= spans[i - 1].second);
}

TEST_CASE("the whole-execution timeout stops running actions") {
    TestEngine e(TestEngine::Files{{"t.lua", R"(
return workflow {
  timeout = "200ms",
  actions = { a = { run = function() sleep(10) end }, b = { needs = { "a" }, run = function() return 1 end } },
})"}});
    json r = e.run("t");
    CHECK(r["status"] == "timed_out");
    CHECK(r["error"] == "execution timed out after 200ms");
    CHECK(r["actions"]["a"]["status"] == "timed_out");
    CHECK(r["actions"]["b"]["status"] == "cancelled");
}

TEST_CASE("overlap skip refuses a run at the concurrency limit") {
    TestEngine e(TestEngine::Files{{"k.lua", R"(
return workflow { overlap = "skip", actions = { a = { run = function() sleep(0.05) return 1 end } } })"}});
    exec::SubmitRequest req;
    req.workflow = "k";
    REQUIRE(e.executor->submit(req));
    auto second = e.executor->submit(req);
    REQUIRE_FALSE(second);
    CHECK(second.error().code == ErrorCode::conflict);
    CHECK(second.error().message.find("overlap is \"skip\"") != std::string::npos);
}

TEST_CASE("no Lua reference outlives the engine") {
    long before = scripting::LuaRef::live_count();
    {
        TestEngine e(TestEngine::Files{
            {"r.lua",
             R"(return workflow { actions = { a = { run = function(ctx) sleep(0.01) return ctx.input end } } })"}});
        e.run("r", {{"v", 1}});
    }
    CHECK(scripting::LuaRef::live_count() == before);
}

TEST_CASE("a Lua action that ends in the turn its execution was made is written once, as it ended; one "
          "that waits has its start committed") {
    TestEngine e(TestEngine::Files{{"quick.lua", R"(
return workflow { actions = { a = { run = function() return 1 end } } })"},
                                   {"waits.lua", R"(
return workflow { actions = { a = { run = function() sleep(0.2) return 2 end } } })"}});
    // quick: the execution inserted, its action's row inserted as it ended (its start with it), the
    // execution ended: 3 row changes, not 5 (pending row, start, end).
    const int before = sqlite3_total_changes(e.db->handle());
    json report = e.run("quick");
    CHECK(report["status"] == "succeeded");
    CHECK(sqlite3_total_changes(e.db->handle()) - before == 3);
    CHECK(report["actions"]["a"]["attempts"] == 1);
    CHECK(report["actions"]["a"]["started_at"].is_string());

    exec::SubmitRequest req;
    req.workflow = "waits";
    auto id = e.executor->submit(req);
    REQUIRE(id);
    uv_run(&e.loop, UV_RUN_NOWAIT); // the action starts and sleeps; the turn commits
    e.db->flush();
    auto row = store::find_execution(*e.db, *id);
    REQUIRE(row);
    REQUIRE(row->actions.size() == 1);
    CHECK(row->actions[0].status == ActionStatus::running);
    CHECK(row->actions[0].attempts == 1);
    CHECK(row->actions[0].started_at.has_value());
    json done;
    REQUIRE(e.executor->when_finished(*id, [&](const exec::EndReport& r) { done = r.doc(); }));
    while (done.is_null())
        uv_run(&e.loop, UV_RUN_ONCE);
    CHECK(done["actions"]["a"]["output"] == 2);
    CHECK(done["actions"]["a"]["attempts"] == 1);
}

TEST_CASE("a Lua attempt still waiting for its turn on the run queue at a commit is not written as started") {
    TestEngine e(TestEngine::Files{{"quick.lua", R"(
return workflow { actions = { a = { run = function() return 1 end } } })"}});
    const int before = sqlite3_total_changes(e.db->handle());
    exec::SubmitRequest req;
    req.workflow = "quick";
    auto id = e.executor->submit(req);
    REQUIRE(id);
    // Committed before the run queue's next pass (as when thousands of runs wait for theirs): the action
    // is pending in the store, with no attempt made; a crash now would run it, as nothing of it has run.
    e.db->flush();
    auto row = store::find_execution(*e.db, *id);
    REQUIRE(row);
    CHECK(row->actions[0].status == ActionStatus::pending);
    CHECK(row->actions[0].attempts == 0);
    json done;
    REQUIRE(e.executor->when_finished(*id, [&](const exec::EndReport& r) { done = r.doc(); }));
    while (done.is_null())
        uv_run(&e.loop, UV_RUN_ONCE);
    CHECK(done["actions"]["a"]["attempts"] == 1);
    CHECK(done["actions"]["a"]["started_at"].is_string());
    // Its start went with its end: 4 row changes (the execution, its action, the action's end, the
    // execution's end), not 5.
    CHECK(sqlite3_total_changes(e.db->handle()) - before == 4);
}

TEST_CASE("an `after` trigger's execution is written in the commit that ends the one it follows") {
    TestEngine e(TestEngine::Files{{"lead.lua", R"(
return workflow { actions = { a = { run = function() return 1 end } } })"},
                                   {"next.lua", R"(
return workflow { triggers = { after = { workflow = "lead" } },
  actions = { b = { run = function(ctx) return ctx.input.status end } } })"}});
    // Seen from another connection (it reads only what is committed) right after the commit that ended
    // `lead`, before anything later is written.
    auto reader = store::Db::open_reader(e.dir.file("luaflow.db"));
    REQUIRE(reader);
    json seen;
    json seen_trigger;
    exec::SubmitRequest req;
    req.workflow = "lead";
    auto id = e.executor->submit(req);
    REQUIRE(id);
    bool ended = false;
    REQUIRE(e.executor->when_finished(*id, [&](const exec::EndReport&) {
        ended = true;
        store::ExecutionFilter f;
        f.workflow = "next";
        seen = store::list_executions(**reader, f);
        if (seen.size() == 1)
            if (auto row = store::find_execution(**reader, seen[0]["id"].get<std::string>()))
                seen_trigger = row->trigger;
    }));
    while (!ended)
        uv_run(&e.loop, UV_RUN_ONCE);
    REQUIRE(seen.size() == 1);
    CHECK(seen_trigger["type"] == "after");
    CHECK(seen_trigger["execution"] == *id);
    // Then it runs, with the report as its input.
    json done;
    REQUIRE(e.executor->when_finished(seen[0]["id"].get<std::string>(),
                                      [&](const exec::EndReport& r) { done = r.doc(); }));
    while (done.is_null())
        uv_run(&e.loop, UV_RUN_ONCE);
    CHECK(done["actions"]["b"]["output"] == "succeeded");
}

TEST_CASE("a new execution's action rows are in the store whether its actions ran, never ran, or it was "
          "cancelled in the turn that made it") {
    TestEngine e(TestEngine::Files{{"chain.lua", R"(
return workflow { actions = {
  a = { run = function() error("boom") end },
  b = { needs = { "a" }, run = function() return 1 end },
} })"}});
    // a fails in the turn that made the execution: b never runs, and both rows are in the report.
    json failed = e.run("chain");
    CHECK(failed["status"] == "failed");
    CHECK(failed["actions"]["a"]["status"] == "failed");
    REQUIRE(failed["actions"].contains("b"));
    CHECK(failed["actions"]["b"]["status"] != "running");

    // Cancelled before anything of it ran or was committed: its rows are written with the end.
    exec::SubmitRequest req;
    req.workflow = "chain";
    auto id = e.executor->submit(req);
    REQUIRE(id);
    REQUIRE(e.executor->cancel(*id));
    e.db->flush();
    auto row = store::find_execution(*e.db, *id);
    REQUIRE(row);
    CHECK(row->status == ExecStatus::cancelled);
    REQUIRE(row->actions.size() == 2);
    for (const store::ActionRow& a : row->actions)
        CHECK(a.status == ActionStatus::cancelled);
}

TEST_CASE("ctx.shared is written with the execution's end, or at the commit while it still runs") {
    TestEngine e(TestEngine::Files{{"two.lua", R"(
return workflow { actions = {
  a = { run = function(ctx) ctx.shared.x = 1 end },
  b = { needs = { "a" }, run = function(ctx) sleep(0.2) ctx.shared.y = 2 end },
} })"}});
    exec::SubmitRequest req;
    req.workflow = "two";
    auto id = e.executor->submit(req);
    REQUIRE(id);
    // Until a has run and its turn is committed, then while b sleeps: x is in the store.
    for (int i = 0; i < 50; ++i) {
        uv_run(&e.loop, UV_RUN_NOWAIT);
        e.db->flush();
        auto row = store::find_execution(*e.db, *id);
        REQUIRE(row);
        if (row->shared.contains("x")) break;
    }
    auto running = store::find_execution(*e.db, *id);
    REQUIRE(running);
    CHECK(running->status == ExecStatus::running);
    CHECK(running->shared == json{{"x", 1}});
    json done;
    REQUIRE(e.executor->when_finished(*id, [&](const exec::EndReport& r) { done = r.doc(); }));
    while (done.is_null())
        uv_run(&e.loop, UV_RUN_ONCE);
    CHECK(done["shared"] == json{{"x", 1}, {"y", 2}});
    CHECK(store::find_execution(*e.db, *id)->shared == json{{"x", 1}, {"y", 2}});
}
