// The load-time check of a schedule: what loading a workflow file reports, at the schedule's line.
#include "daemon/schedule/check.hpp"

#include <doctest/doctest.h>

using namespace luaflow;

namespace {

std::string error_of(const std::string& source) {
    scripting::SandboxOptions o;
    o.memory_limit = 8u << 20;
    auto r = schedule::checked(scripting::load_workflow("wf", "wf.lua", source, o));
    auto* err = std::get_if<scripting::LoadError>(&r);
    return err ? err->to_string() : "";
}

} // namespace

TEST_CASE("a bad schedule is a load error at the schedule's line, naming the part") {
    CHECK(error_of("return workflow {\n  schedule = { rrule = 'FREQ=DAILY', catchup = 'some' },\n  actions = "
                   "{ a = { run = function() end } },\n}")
              .find("wf.lua:2: schedule.catchup: expected \"none\", \"latest\" or \"all\"") == 0);
    CHECK(error_of("return workflow {\n\n  schedule = { 'FREQ=DAILY', { cron = '* * *' } },\n  actions = "
                   "{ a = { run = function() end } },\n}")
              .rfind("wf.lua:3: schedule[2].cron: cron: expected 5 fields", 0) == 0);
    CHECK(error_of("return workflow {\n  schedule = { rrule = 'FREQ=DAILY', when = 'now' },\n  actions = "
                   "{ a = { run = function() end } },\n}") == "wf.lua:2: schedule: unknown field 'when'");
    CHECK(
        error_of(
            "return workflow {\n  schedule = 'FREQ=DAILY',\n  actions = { a = { run = function() end } },\n}")
            .empty());
}
