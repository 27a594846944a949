// The load-time check of a schedule: what loading a workflow file reports, at the schedule's line.
#include "daemon/schedule/check.hpp"
#include "daemon/schedule/rules.hpp"

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

TEST_CASE("whether a rule ever fires is worked out once for every workflow that has it") {
    const std::string wf =
        "return workflow {\n  schedule = { rrule = 'FREQ=MONTHLY;BYMONTHDAY=3;BYHOUR=17;BYMINUTE=41', "
        "tz = 'America/Sao_Paulo' },\n  actions = { a = { run = function() end } },\n}";
    const std::uint64_t before = schedule::fire_checks_computed();
    for (int i = 0; i < 50; ++i)
        CHECK(error_of(wf).empty());
    CHECK(schedule::fire_checks_computed() == before + 1);
    // Another zone or another dtstart is another answer.
    CHECK(error_of(wf.substr(0, wf.find("America/Sao_Paulo")) +
                   "Asia/Kathmandu' },\n  actions = { a = { run = "
                   "function() end } },\n}")
              .empty());
    CHECK(schedule::fire_checks_computed() == before + 2);
}

TEST_CASE("a rule that never fires is refused each time, from the answer kept") {
    // BYSETPOS=5 of two weekdays a month names no time; only the expansion finds out.
    const std::string wf =
        "return workflow {\n  schedule = 'FREQ=MONTHLY;BYDAY=MO;BYMONTHDAY=1,2;BYSETPOS=5',\n"
        "  actions = { a = { run = function() end } },\n}";
    const std::uint64_t before = schedule::fire_checks_computed();
    for (int i = 0; i < 3; ++i)
        CHECK(error_of(wf) ==
              "wf.lua:2: schedule: \"FREQ=MONTHLY;BYDAY=MO;BYMONTHDAY=1,2;BYSETPOS=5\" never fires");
    CHECK(schedule::fire_checks_computed() == before + 1);
}

TEST_CASE("a schedule that is not UTF-8 is a load error, not a crash (found by the fuzzers)") {
    // "\xab" inside the rule, and a table value that is not UTF-8: a workflow file may hold any bytes.
    std::string err = error_of("return workflow { schedule = \"FREQ=DAILY;BYH\xabUR=25\", "
                               "actions = { a = { run = function() end } } }");
    CHECK(err.find("wf.lua:1:") == 0);
    CHECK(err.find("is not a valid RRULE") != std::string::npos);
    std::string table =
        error_of("return workflow { schedule = { rrule = \"FREQ=DAILY\", tz = { \"\xff\" } }, "
                 "actions = { a = { run = function() end } } }");
    CHECK(table.find("schedule.tz[1]: the string is not UTF-8") != std::string::npos);
    // Two schedules that differ only in their invalid bytes are not one cache entry.
    auto a = schedule::parse_schedule(nlohmann::json("FREQ=DAILY;BYHOUR=\xab"));
    auto b = schedule::parse_schedule(nlohmann::json("FREQ=DAILY;BYHOUR=\xac"));
    REQUIRE_FALSE(a);
    REQUIRE_FALSE(b);
}
