// Successful ends in the daemon's log: at most one line a second per workflow, which counts the others.
#include "daemon/exec/success_log.hpp"

#include <doctest/doctest.h>

using namespace luaflow::exec;

TEST_CASE("a workflow's successes are logged once a second, the line counting those not logged") {
    SuccessLog log;
    auto v = log.on_success("hook", 10'000);
    CHECK(v.log);
    CHECK(v.unlogged == 0);
    for (int i = 1; i <= 50; ++i)
        CHECK_FALSE(log.on_success("hook", 10'000 + i * 10).log);
    // Another workflow has its own second.
    CHECK(log.on_success("backup", 10'100).log);
    v = log.on_success("hook", 11'000);
    CHECK(v.log);
    CHECK(v.unlogged == 50);
    v = log.on_success("hook", 13'000);
    CHECK(v.log);
    CHECK(v.unlogged == 0);
}

TEST_CASE("a clock set back does not silence a workflow's successes") {
    SuccessLog log;
    CHECK(log.on_success("hook", 50'000).log);
    CHECK_FALSE(log.on_success("hook", 50'500).log);
    auto v = log.on_success("hook", 20'000);
    CHECK(v.log);
    CHECK(v.unlogged == 1);
    CHECK_FALSE(log.on_success("hook", 20'001).log);
}
