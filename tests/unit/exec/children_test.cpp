// Child executions (workflows.run) on a real loop with a real store: the report with wait, the parent
// action held until its children end, cancellation going down, re-attachment by a retried attempt,
// and the errors.
#include "daemon/exec/report.hpp"
#include "daemon/store/executions.hpp"
#include "tests/unit/support/engine.hpp"

#include <doctest/doctest.h>

using namespace luaflow;
using nlohmann::json;
using testing::TestEngine;

namespace {

double seconds(const json& t) {
    return static_cast<double>(*parse_rfc3339(t.get<std::string>())) / 1000.0;
}

json inspect(TestEngine& e, const std::string& id) {
    auto row = store::find_execution(*e.db, id);
    REQUIRE(row);
    return exec::inspect_document(*row);
}

json executions_of(TestEngine& e, const std::string& workflow) {
    store::ExecutionFilter f;
    f.workflow = workflow;
    return store::list_executions(*e.db, f);
}

const char* kChild = R"(
return workflow {
  triggers = { manual = false },
  input = { n = { type = "number", required = true } },
  actions = {
    work = { run = function(ctx) sleep(ctx.input.n); return { doubled = ctx.input.n * 2 } end },
  },
})";

} // namespace

TEST_CASE("workflows.run with wait returns the child's report; the child names its parent") {
    TestEngine e(TestEngine::Files{{"child.lua", kChild}, {"parent.lua", R"(
return workflow {
  actions = {
    call = { run = function()
      local report = workflows.run("child", { n = 0.01 }, { wait = true })
      return { status = report.status, out = report.actions.work.output.doubled, id = report.id }
    end },
  },
})"}});
    json r = e.run("parent");
    REQUIRE(r["status"] == "succeeded");
    json out = r["actions"]["call"]["output"];
    CHECK(out["status"] == "succeeded");
    CHECK(out["out"] == 0.02);
    json child = inspect(e, out["id"]);
    CHECK(child["parent"] == r["id"]);
    CHECK(child["trigger"]["type"] == "child");
    CHECK(child["trigger"]["action"] == "call");
    CHECK(child["trigger"]["call"] == 1);
    // triggers.manual = false does not stop a parent from starting it.
    CHECK(r["actions"]["call"]["children"] ==
          json::array({{{"id", out["id"]}, {"workflow", "child"}, {"status", "succeeded"}}}));
}

TEST_CASE("without wait the id comes back at once, but the action does not finish before its child") {
    TestEngine e(TestEngine::Files{{"child.lua", kChild}, {"parent.lua", R"(
return workflow {
  actions = {
    fire = { run = function() return workflows.run("child", { n = 0.3 }) end },
  },
})"}});
    json r = e.run("parent");
    REQUIRE(r["status"] == "succeeded");
    json child = inspect(e, r["actions"]["fire"]["output"]);
    CHECK(child["status"] == "succeeded");
    CHECK(seconds(r["actions"]["fire"]["finished_at"]) >= seconds(child["finished_at"]));
}

TEST_CASE("a failed attempt cancels its unfinished children; cancelling the parent cancels them too") {
    TestEngine e(TestEngine::Files{{"child.lua", kChild},
                                   {"parent.lua", R"(
return workflow {
  actions = {
    boom = { run = function() workflows.run("child", { n = 30 }); error("parent broke") end },
  },
})"},
                                   {"waiter.lua", R"(
return workflow {
  actions = {
    hold = { run = function() workflows.run("child", { n = 30 }, { wait = true }) end },
  },
})"}});
    json r = e.run("parent");
    CHECK(r["status"] == "failed");
    json kids = r["actions"]["boom"]["children"];
    REQUIRE(kids.size() == 1);
    CHECK(kids[0]["status"] == "cancelled");
    json child = inspect(e, kids[0]["id"]);
    CHECK(child["error"].get<std::string>().find("its parent action 'boom' failed") != std::string::npos);

    exec::SubmitRequest req;
    req.workflow = "waiter";
    auto id = e.executor->submit(req);
    REQUIRE(id);
    std::string child_id;
    while (child_id.empty()) {
        uv_run(&e.loop, UV_RUN_ONCE);
        json w = inspect(e, *id);
        if (w["actions"]["hold"].contains("children")) child_id = w["actions"]["hold"]["children"][0]["id"];
    }
    REQUIRE(e.executor->cancel(*id));
    json report;
    REQUIRE(e.executor->when_finished(child_id, [&](const exec::EndReport& j) { report = j.doc(); }));
    while (report.is_null())
        uv_run(&e.loop, UV_RUN_ONCE);
    CHECK(report["status"] == "cancelled");
    CHECK(inspect(e, *id)["status"] == "cancelled");
}

TEST_CASE("a retried attempt gets back the child the same call started, unless it failed") {
    TestEngine e(TestEngine::Files{{"child.lua", kChild}, {"parent.lua", R"(
return workflow {
  actions = {
    call = { retries = 2, retry_delay = "10ms", run = function(ctx)
      local a = workflows.run("child", { n = 0.01 }, { wait = true })
      local b = workflows.run("child", { n = ctx.execution.attempt / 100 }, { wait = true })
      if ctx.execution.attempt < 3 then error("try again") end
      return { a = a.id, b = b.id }
    end },
  },
})"}});
    json r = e.run("parent");
    REQUIRE(r["status"] == "succeeded");
    CHECK(r["actions"]["call"]["attempts"] == 3);
    // The first call's child is the same every time; the second asks with a new input each attempt.
    CHECK(executions_of(e, "child").size() == 4);
    CHECK(r["actions"]["call"]["children"].size() == 4);
    CHECK(r["actions"]["call"]["children"][0]["id"] == r["actions"]["call"]["output"]["a"]);
}

TEST_CASE("workflows.run errors name the workflow and the cause") {
    TestEngine e(TestEngine::Files{{"child.lua", kChild},
                                   {"self.lua", R"(
return workflow {
  actions = { again = { run = function() return workflows.run("self", {}, { wait = true }) end } },
})"},
                                   {"deep.lua", R"(
return workflow {
  concurrency = 100,
  input = { depth = { type = "number", default = 0 } },
  actions = { down = { run = function(ctx)
    local r = workflows.run("deep", { depth = ctx.input.depth + 1 }, { wait = true })
    if r.status ~= "succeeded" then error("child " .. r.status) end
  end } },
})"},
                                   {"bad.lua", R"(
local function message(...) local ok, e = pcall(...); return ok and "no error" or e end
return workflow {
  actions = {
    missing = { run = function() return message(workflows.run, "nope") end },
    input = { run = function() return message(workflows.run, "child", { n = "x" }) end },
    option = { run = function() return message(workflows.run, "child", { n = 1 }, { wiat = true }) end },
    list = { run = function() return message(workflows.run, "child", { 1, 2 }) end },
    id = { run = function() return message(workflows.run, 42) end },
  },
})"}});
    json r = e.run("self");
    CHECK(r["status"] == "failed");
    CHECK(r["actions"]["again"]["error"].get<std::string>().find(
              "workflows.run('self'): workflow 'self' is at its concurrency limit (1) held by execution " +
              r["id"].get<std::string>() + ", which is this child's own parent") != std::string::npos);

    r = e.run("deep");
    CHECK(r["status"] == "failed");
    json deep = executions_of(e, "deep");
    REQUIRE(deep.size() == exec::kMaxChildDepth + 1);
    // Newest first: the deepest one could not start another.
    CHECK(inspect(e, deep[0]["id"])["actions"]["down"]["error"].get<std::string>().find(
              "child executions nest deeper than 16") != std::string::npos);

    r = e.run("bad");
    REQUIRE(r["status"] == "succeeded");
    auto said = [&](const char* action) { return r["actions"][action]["output"].get<std::string>(); };
    CHECK(said("missing").find("workflows.run('nope'): no workflow 'nope'") != std::string::npos);
    CHECK(said("input").find("workflows.run('child'): ") != std::string::npos);
    CHECK(said("input").find("'n'") != std::string::npos);
    CHECK(said("option").find("unknown option 'wiat' (there is: wait)") != std::string::npos);
    CHECK(said("list").find("a table of named fields, not a list") != std::string::npos);
    CHECK(said("id").find("the workflow id must be a string, got number") != std::string::npos);
    CHECK(executions_of(e, "child").empty());
}
