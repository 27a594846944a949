// exec/retry_plan: when failed attempts are made again, and what `luaflowctl retry` runs again.
#include "daemon/exec/retry_plan.hpp"

#include <doctest/doctest.h>

using namespace luaflow;
using luaflow::exec::actions_to_rerun;
using luaflow::exec::after_failure;
using luaflow::exec::retry_delay;

namespace {

scripting::ActionDef action(int retries, Millis delay, scripting::Backoff backoff) {
    scripting::ActionDef a;
    a.name = "a";
    a.retries = retries;
    a.retry_delay = delay;
    a.backoff = backoff;
    return a;
}

// Actions named by index, with `edges` as {needer, needed}; dependents filled as the loader does.
scripting::WorkflowDef graph(std::size_t n, std::vector<std::pair<std::size_t, std::size_t>> edges) {
    scripting::WorkflowDef def;
    def.actions.resize(n);
    for (std::size_t i = 0; i < n; ++i)
        def.actions[i].name = "a" + std::to_string(i);
    for (auto [needer, needed] : edges) {
        def.actions[needer].deps.push_back(needed);
        def.actions[needed].dependents.push_back(needer);
    }
    return def;
}

} // namespace

TEST_CASE("exponential backoff doubles the delay per earlier failure") {
    auto a = action(5, 1'000, scripting::Backoff::exponential);
    CHECK(retry_delay(a, 1) == 1'000);
    CHECK(retry_delay(a, 2) == 2'000);
    CHECK(retry_delay(a, 3) == 4'000);
}

TEST_CASE("exponential backoff stops at one hour however many failures came before") {
    auto a = action(100, 1'000, scripting::Backoff::exponential);
    CHECK(retry_delay(a, 12) == 2'048'000);
    CHECK(retry_delay(a, 13) == scripting::kMaxBackoff);
    CHECK(retry_delay(a, 60) == scripting::kMaxBackoff); // no overflow after 60 doublings
    auto slow = action(3, 2 * scripting::kMaxBackoff, scripting::Backoff::exponential);
    CHECK(retry_delay(slow, 1) == scripting::kMaxBackoff);
}

TEST_CASE("fixed backoff waits the same after every failure") {
    auto a = action(5, 3'000, scripting::Backoff::fixed);
    CHECK(retry_delay(a, 1) == 3'000);
    CHECK(retry_delay(a, 4) == 3'000);
}

TEST_CASE("a failure with retries left is tried again and says which attempt of how many failed") {
    auto a = action(2, 1'000, scripting::Backoff::exponential);
    auto f = after_failure(a, 2, false, "exit 3");
    CHECK(f.retry);
    CHECK(f.delay == 2'000);
    CHECK(f.what == "attempt 2/3 failed: exit 3");
}

TEST_CASE("the last attempt's failure is final and a timeout is named as one") {
    auto a = action(2, 1'000, scripting::Backoff::exponential);
    auto f = after_failure(a, 3, true, "after 5s");
    CHECK_FALSE(f.retry);
    CHECK(f.what == "attempt 3/3 timed out: after 5s");
    CHECK_FALSE(after_failure(action(0, 1'000, scripting::Backoff::fixed), 1, false, "x").retry);
}

TEST_CASE("a retry runs the failed action again and everything downstream of it, not what succeeded") {
    // a0 -> a1 -> a2, a0 -> a3; a1 failed, a2 skipped, a3 succeeded.
    auto def = graph(4, {{1, 0}, {2, 1}, {3, 0}});
    auto rerun = actions_to_rerun(
        def, {ActionStatus::succeeded, ActionStatus::failed, ActionStatus::skipped, ActionStatus::succeeded});
    CHECK(rerun == std::vector<bool>{false, true, true, false});
}

TEST_CASE("a retry reaches dependents listed before what they need") {
    // a2 needs a1, a0 needs a2: the chain runs against index order.
    auto def = graph(3, {{2, 1}, {0, 2}});
    auto rerun =
        actions_to_rerun(def, {ActionStatus::succeeded, ActionStatus::timed_out, ActionStatus::succeeded});
    CHECK(rerun == std::vector<bool>{true, true, true});
}

TEST_CASE(
    "cancelled and never-started actions are run again; an all-succeeded execution has nothing to run") {
    auto def = graph(3, {});
    CHECK(actions_to_rerun(def, {ActionStatus::cancelled, ActionStatus::pending, ActionStatus::succeeded}) ==
          std::vector<bool>{true, true, false});
    CHECK(actions_to_rerun(def, {ActionStatus::succeeded, ActionStatus::succeeded,
                                 ActionStatus::succeeded}) == std::vector<bool>{false, false, false});
    // An action the store does not have is pending: it runs.
    CHECK(actions_to_rerun(def, {ActionStatus::succeeded}) == std::vector<bool>{false, true, true});
}
