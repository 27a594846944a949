// Loading workflow files: every field checked, errors in the compiler's FILE:LINE: message form.
#include "scripting/workflow_loader.hpp"
#include "tests/unit/support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <fstream>

using namespace luaflow;
using namespace luaflow::scripting;

namespace {

LoadResult load(const std::string& source, const std::string& dir = "/nonexistent") {
    SandboxOptions o;
    o.workflows_dir = dir;
    return load_workflow("wf", "wf.lua", source, o);
}

std::string error_of(const std::string& source) {
    auto r = load(source);
    if (auto* e = std::get_if<LoadError>(&r)) return e->to_string();
    return "(loaded)";
}

std::shared_ptr<WorkflowDef> loaded(const std::string& source) {
    auto r = load(source);
    if (auto* e = std::get_if<LoadError>(&r)) FAIL(e->to_string());
    return std::get<std::shared_ptr<WorkflowDef>>(r);
}

} // namespace

TEST_CASE("a valid workflow with every field") {
    auto def = loaded(R"(return workflow {
  description = "all fields",
  enabled = false,
  schedule = { rrule = "FREQ=HOURLY", tz = "Europe/Berlin", catchup = "latest" },
  triggers = { manual = false, webhook = { secret = "s" }, after = { workflow = "x", on = "any" } },
  input = { n = { type = "number", required = true }, tag = { type = "string", default = "a" } },
  context = { threshold = 10 },
  concurrency = 3, overlap = "skip", timeout = "5m",
  retries = 2, retry_delay = "500ms", backoff = "fixed", queue = "cpu",
  notify = { failure = { "ops" } },
  actions = {
    a = { run = function(ctx) return 1 end, timeout = 10, config = { k = "v" } },
    b = { needs = { "a" }, cmd = { "echo", "{{ input.n }}" }, retries = 0, env = { X = "1" }, cwd = "/tmp",
          resources = { cpus = 2, gpus = 1, memory = "512M" }, host = "gpubox" },
    c = { needs = { "a", "b" }, shell = "true", always = true, when = function() return true end },
  },
})");
    CHECK(def->description == "all fields");
    CHECK_FALSE(def->enabled);
    CHECK_FALSE(def->triggers.manual);
    CHECK(def->concurrency == 3);
    CHECK(def->overlap == Overlap::skip);
    CHECK(def->timeout == 300'000);
    CHECK(def->inputs.size() == 2);
    CHECK(def->context == nlohmann::json{{"threshold", 10}});
    REQUIRE(def->actions.size() == 3);
    const ActionDef& a = def->actions[0];
    CHECK(a.name == "a");
    CHECK(a.kind == ActionKind::run);
    CHECK(a.timeout == 10'000);
    CHECK(a.retries == 2); // the workflow's default
    CHECK(a.retry_delay == 500);
    CHECK(a.backoff == Backoff::fixed);
    CHECK(a.queue == "cpu");
    CHECK(a.line == 12);
    const ActionDef& b = def->actions[1];
    CHECK(b.kind == ActionKind::cmd);
    CHECK(b.retries == 0);
    CHECK(b.resources.memory == 512u << 20);
    CHECK(b.deps == std::vector<std::size_t>{0});
    CHECK(def->actions[2].deps == std::vector<std::size_t>{0, 1});
    CHECK(def->actions[2].always);
}

TEST_CASE("needs: unknown names and cycles are named") {
    CHECK(error_of(R"(return workflow {
  actions = {
    check = { run = function() end },
    reorder = { needs = { "chek" }, run = function() end },
  },
})") == "wf.lua:4: action 'reorder': needs unknown action 'chek'");
    std::string cycle = error_of(R"(return workflow {
  actions = {
    a = { needs = { "c" }, run = function() end },
    b = { needs = { "a" }, run = function() end },
    c = { needs = { "b" }, run = function() end },
  },
})");
    CHECK(cycle.find("needs cycle") != std::string::npos);
    CHECK(cycle.find("a -> c -> b -> a") != std::string::npos);
    CHECK(error_of("return workflow { actions = { a = { needs = { 'a' }, run = function() end } } }")
              .find("needs itself") != std::string::npos);
}

TEST_CASE("groups order actions after the previous group") {
    auto def = loaded(R"(return workflow { actions = {
  a = { group = 1, run = function() end }, b = { group = 1, run = function() end },
  c = { group = 5, run = function() end }, d = { group = 9, run = function() end },
  e = { run = function() end },
} })");
    CHECK(def->actions[0].deps.empty());
    CHECK(def->actions[2].deps == std::vector<std::size_t>{0, 1});
    CHECK(def->actions[3].deps == std::vector<std::size_t>{2});
    CHECK(def->actions[4].deps.empty());
}

TEST_CASE("field errors name the field, the value and the line") {
    CHECK(error_of("return workflow {\n  shedule = 'x',\n  actions = { a = { run = function() end } },\n}") ==
          "wf.lua:2: unknown field 'shedule'");
    CHECK(error_of(
              "return workflow {\n  concurrency = -1,\n  actions = { a = { run = function() end } },\n}") ==
          "wf.lua:2: field 'concurrency': expected a positive integer, got -1");
    CHECK(
        error_of(
            "return workflow {\n  actions = {\n    a = { timeout = '5x', run = function() end },\n  },\n}") ==
        "wf.lua:3: action 'a': field 'timeout': '5x' is not a duration (use 500ms, 30s, 5m, 2h, 1d or "
        "seconds)");
    CHECK(error_of(
              "return workflow {\n  actions = {\n    a = { shell = 'x', run = function() end },\n  },\n}") ==
          "wf.lua:3: action 'a': exactly one of run, script, cmd, shell is required");
    CHECK(error_of("return workflow {\n  actions = {\n    a = { rnu = function() end },\n  },\n}") ==
          "wf.lua:3: action 'a': unknown field 'rnu'");
    CHECK(error_of(
              "return workflow {\n  overlap = 'drop',\n  actions = { a = { run = function() end } },\n}") ==
          "wf.lua:2: field 'overlap': expected \"queue\" or \"skip\", got \"drop\"");
    CHECK(error_of("return workflow { actions = {} }").find("at least one action is required") !=
          std::string::npos);
    CHECK(error_of("return workflow { description = 'no actions' }").find("field 'actions' is required") !=
          std::string::npos);
    CHECK(error_of("return workflow {\n  input = { n = { type = 'integer' } },\n  actions = { a = { run = "
                   "function() end } },\n}")
              .find("input 'n': field 'type': expected \"string\" or \"number\"") != std::string::npos);
    CHECK(error_of("return workflow {\n  notify = { failur = { 'ops' } },\n  actions = { a = { run = "
                   "function() end } },\n}")
              .find("unknown event 'failur'") != std::string::npos);
}

TEST_CASE("host, resources, env and cwd are for subprocess actions") {
    CHECK(error_of("return workflow {\n  actions = {\n    a = { run = function() end,\n          host = "
                   "'gpubox' },\n  },\n}") == "wf.lua:4: action 'a': field 'host' is for cmd and shell "
                                              "actions; a run action runs inside the daemon");
    CHECK(error_of("return workflow { actions = { a = { run = function() end, resources = { gpus = 1 } } } }")
              .find("field 'resources' is for cmd and shell actions") != std::string::npos);
}

TEST_CASE("cmd templates are checked at load time") {
    CHECK(error_of("return workflow {\n  actions = {\n    a = { cmd = { 'echo', '{{ 1 + }}' } },\n  },\n}") ==
          "wf.lua:3: action 'a': cmd[2] {{ 1 + }}:1: unexpected symbol near ')'");
    CHECK(error_of("return workflow { actions = { a = { cmd = { 'echo', 'x{{' } } } }")
              .find("cmd[2] \"x{{\": \"{{\" without a closing \"}}\"") != std::string::npos);
}

TEST_CASE("what the file itself gets wrong") {
    CHECK(error_of("return workflow {\n  actions = { a = { run = function() end } \n").find("wf.lua:") == 0);
    CHECK(error_of("return { actions = { a = { run = function() end } } }") ==
          "wf.lua:1: the file must return workflow { ... }");
    CHECK(error_of("local x = nil\nreturn x.y") == "wf.lua:2: attempt to index local 'x' (a nil value)");
    CHECK(error_of("io.open('/etc/passwd')").find("attempt to index global 'io'") != std::string::npos);
}

TEST_CASE("a runaway loop at load time is stopped") {
    std::string e = error_of("while true do end");
    CHECK(e.find("loading took longer than 2s") != std::string::npos);
}

TEST_CASE("script actions and lib modules come from the workflows directory") {
    testing::TempDir dir;
    std::filesystem::create_directories(dir.file("lib"));
    std::filesystem::create_directories(dir.file("scripts"));
    std::ofstream(dir.file("lib/util.lua")) << "return { twice = function(x) return 2 * x end }";
    std::ofstream(dir.file("scripts/step.lua")) << "local ctx = ... return ctx.input.n";
    auto r = load(R"(local util = require("lib.util")
return workflow { context = { n = util.twice(21) }, actions = { s = { script = "scripts/step.lua" } } })",
                  dir.path());
    REQUIRE(std::holds_alternative<std::shared_ptr<WorkflowDef>>(r));
    auto def = std::get<std::shared_ptr<WorkflowDef>>(r);
    CHECK(def->context == nlohmann::json{{"n", 42}});
    CHECK(def->actions[0].kind == ActionKind::script);
    CHECK(def->code->actions[0].fn.valid());
    auto escape = load("return workflow { actions = { s = { script = '../../etc/passwd' } } }", dir.path());
    CHECK(std::get<LoadError>(escape).message.find("must be a path inside the workflows directory") !=
          std::string::npos);
    auto missing = load("return workflow { actions = { s = { script = 'nope.lua' } } }", dir.path());
    CHECK(std::get<LoadError>(missing).message.find("cannot be read") != std::string::npos);
}

TEST_CASE("workflow ids and digests") {
    CHECK(is_valid_workflow_id("inventory-reorder"));
    CHECK(is_valid_workflow_id("a.b_c-1"));
    CHECK_FALSE(is_valid_workflow_id("-x"));
    CHECK_FALSE(is_valid_workflow_id("a b"));
    CHECK_FALSE(is_valid_workflow_id(""));
    CHECK(source_digest("a") != source_digest("b"));
    CHECK(source_digest("a").size() == 16);
}

TEST_CASE("issue 13: every error of a file, in source order, the same on every run") {
    const std::string source = R"(return workflow {
  description = 5,
  bogus = true,
  actions = {
    a = { run = function() end, retries = -1 },
    b = { shell = "x", needs = { "zz" } },
    c = { cmd = {}, timeout = "soon" },
    d = { run = function() end, env = { X = "1" } },
    e = { shell = "y", frob = 1, needs = { "a" } },
  },
  concurrency = 0,
})";
    const std::vector<std::string> want = {
        "wf.lua:2: field 'description': expected a string, got 5",
        "wf.lua:3: unknown field 'bogus'",
        "wf.lua:5: action 'a': field 'retries': expected an integer >= 0, got -1",
        "wf.lua:6: action 'b': needs unknown action 'zz'",
        "wf.lua:7: action 'c': field 'cmd' needs at least the program",
        "wf.lua:7: action 'c': field 'timeout': 'soon' is not a duration (use 500ms, 30s, 5m, 2h, 1d or "
        "seconds)",
        "wf.lua:8: action 'd': field 'env' is for cmd and shell actions; a run action runs inside the daemon",
        "wf.lua:9: action 'e': unknown field 'frob'",
        "wf.lua:11: field 'concurrency': expected a positive integer, got 0",
    };
    // A table's keys come in hash order, which changes from state to state: load it many times.
    for (int i = 0; i < 20; ++i) {
        auto r = load(source);
        REQUIRE(std::holds_alternative<LoadError>(r));
        const LoadError& e = std::get<LoadError>(r);
        std::vector<std::string> got;
        for (const LoadError& one : e.all())
            got.push_back(one.to_string());
        REQUIRE(got == want);
        CHECK(e.to_string() == want.front());
        CHECK(e.more.size() == want.size() - 1);
    }
}

TEST_CASE("issue 13: a further check's error is listed among the file's own, by line") {
    SandboxOptions o;
    o.workflows_dir = "/nonexistent";
    DefCheck check = [](const WorkflowDef& def) -> std::optional<LoadError> {
        return LoadError{def.file, def.schedule_line, "schedule: checked", {}};
    };
    auto r = load_workflow("wf", "wf.lua", R"(return workflow {
  bogus = 1,
  schedule = "FREQ=DAILY",
  actions = { a = { run = function() end, retries = "x" } },
})",
                           o, check);
    REQUIRE(std::holds_alternative<LoadError>(r));
    std::vector<std::string> got;
    for (const LoadError& one : std::get<LoadError>(r).all())
        got.push_back(one.to_string());
    CHECK(got == std::vector<std::string>{"wf.lua:2: unknown field 'bogus'", "wf.lua:3: schedule: checked",
                                          "wf.lua:4: action 'a': field 'retries': expected an integer >= 0, "
                                          "got \"x\""});
    // A file without errors of its own fails on the check alone.
    auto only = load_workflow(
        "wf", "wf.lua",
        "return workflow {\n  schedule = 'FREQ=DAILY',\n  actions = { a = { run = function() end } },\n}", o,
        check);
    REQUIRE(std::holds_alternative<LoadError>(only));
    CHECK(std::get<LoadError>(only).to_string() == "wf.lua:2: schedule: checked");
    CHECK(std::get<LoadError>(only).more.empty());
}

TEST_CASE("a load error without a line names the file alone, not line 0") {
    CHECK(LoadError{"/w/a.lua", 0, "cannot read the file", {}}.to_string() ==
          "/w/a.lua: cannot read the file");
    CHECK(LoadError{"/w/a.lua", 3, "boom", {}}.to_string() == "/w/a.lua:3: boom");
}

TEST_CASE("load_code evaluates a definition's text again into a new state with the same functions") {
    testing::TempDir dir;
    std::filesystem::create_directories(dir.file("scripts"));
    std::ofstream(dir.file("scripts/step.lua")) << "return 1";
    auto r = load(R"(return workflow { actions = {
  a = { run = function() end, when = function() return true end },
  s = { script = "scripts/step.lua" },
  c = { cmd = { "echo", "{{ ctx.input.x }}" } },
  p = { shell = "true" } } })",
                  dir.path());
    REQUIRE(std::holds_alternative<std::shared_ptr<WorkflowDef>>(r));
    auto def = std::get<std::shared_ptr<WorkflowDef>>(r);
    CHECK(def->uses_lua);
    // Its own code first; without it, a new state. The script comes from the definition, not the disk.
    SandboxOptions o;
    o.workflows_dir = dir.path();
    CHECK(load_code(*def, o).value() == def->code);
    auto first = def->code;
    def->code.reset();
    std::filesystem::remove(dir.file("scripts/step.lua"));
    auto again = load_code(*def, o);
    REQUIRE(again);
    CHECK(again.value() != first);
    CHECK(again.value()->lua != first->lua);
    const auto& actions = again.value()->actions;
    REQUIRE(actions.size() == 4);
    CHECK(def->actions[0].name == "a");
    CHECK(actions[0].fn.valid());
    CHECK(actions[0].when.valid());
    CHECK(actions[1].argv_fn.valid()); // c
    CHECK(!actions[2].fn.valid());     // p: a shell action has no function
    CHECK(actions[3].fn.valid());      // s
}

TEST_CASE("load_code refuses a text that now gives other actions") {
    auto def = loaded("return workflow { actions = { a = { run = function() end } } }");
    def->code.reset();
    def->source = "return workflow { actions = { b = { run = function() end } } }";
    auto again = load_code(*def, SandboxOptions{});
    REQUIRE(!again);
    CHECK(again.error().message.find("gave different actions when evaluated again") != std::string::npos);
    def->source = "error('gone')";
    again = load_code(*def, SandboxOptions{});
    REQUIRE(!again);
    CHECK(again.error().message.find("evaluating wf.lua again for its state failed: wf.lua:1: gone") !=
          std::string::npos);
}

TEST_CASE("a workflow of plain cmd and shell actions uses no Lua") {
    CHECK(!loaded("return workflow { actions = { a = { cmd = { 'true' } }, b = { shell = 'true' } } }")
               ->uses_lua);
    CHECK(loaded("return workflow { actions = { a = { cmd = { 'echo', '{{ 1 }}' } } } }")->uses_lua);
}
