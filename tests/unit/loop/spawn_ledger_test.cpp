// Telling from pids alone whether a child started processes: each pid after its own must have gone to a
// child of ours spawned after it, within a short life and without a wrap-around.
#include "loop/spawn_ledger.hpp"

#include <doctest/doctest.h>

using luaflow::loop::SpawnLedger;

namespace {
constexpr std::uint64_t kMs = 1'000'000;
}

TEST_CASE("spawn ledger: a child followed only by children of ours started nothing") {
    SpawnLedger ledger;
    ledger.note(1000, 10 * kMs);
    CHECK_FALSE(ledger.may_have_started(1000, 10 * kMs, 1000, 11 * kMs)); // no pid given since
    ledger.note(1001, 12 * kMs);
    ledger.note(1002, 13 * kMs);
    CHECK_FALSE(ledger.may_have_started(1000, 10 * kMs, 1002, 14 * kMs));
    CHECK_FALSE(ledger.may_have_started(1001, 12 * kMs, 1002, 14 * kMs));
}

TEST_CASE("spawn ledger: a pid after the child's that is not ours may be the child's") {
    SpawnLedger ledger;
    ledger.note(1000, 10 * kMs);
    ledger.note(1002, 12 * kMs); // 1001 went to someone else: the child's own, maybe
    CHECK(ledger.may_have_started(1000, 10 * kMs, 1002, 13 * kMs));
    CHECK(ledger.may_have_started(1000, 10 * kMs, 1001, 13 * kMs));
}

TEST_CASE("spawn ledger: an entry from before the child's spawn does not count (a pid from before a wrap)") {
    SpawnLedger ledger;
    ledger.note(1001, 5 * kMs); // long ago, the same number
    ledger.note(1000, 10 * kMs);
    CHECK(ledger.may_have_started(1000, 10 * kMs, 1001, 11 * kMs));
}

TEST_CASE("spawn ledger: a long life, a wrap-around, a wide gap or an unknown last pid mean maybe") {
    SpawnLedger ledger;
    ledger.note(1000, 10 * kMs);
    CHECK(ledger.may_have_started(1000, 10 * kMs, 1000, 10 * kMs + SpawnLedger::kShortLifeNs + 1));
    CHECK_FALSE(ledger.may_have_started(1000, 10 * kMs, 1000, 10 * kMs + SpawnLedger::kShortLifeNs));
    CHECK(ledger.may_have_started(1000, 10 * kMs, 999, 11 * kMs)); // wrapped past pid_max
    CHECK(ledger.may_have_started(1000, 10 * kMs, std::nullopt, 11 * kMs));
    for (int i = 1; i <= static_cast<int>(SpawnLedger::kSpawnsKept) + 1; ++i)
        ledger.note(1000 + i, 10 * kMs + static_cast<std::uint64_t>(i));
    CHECK(ledger.may_have_started(1000 + 1, 10 * kMs + 1, 1000 + 1 + SpawnLedger::kSpawnsKept + 1,
                                  11 * kMs)); // more than the ledger holds
}

TEST_CASE("spawn ledger: the ledger keeps the latest spawns only") {
    SpawnLedger ledger;
    ledger.note(2000, 10 * kMs);
    ledger.note(2001, 11 * kMs);
    for (std::size_t i = 0; i < SpawnLedger::kSpawnsKept - 1; ++i)
        ledger.note(5000 + static_cast<int>(i), 12 * kMs); // pushes out 2000, keeps 2001
    CHECK_FALSE(ledger.may_have_started(2000, 10 * kMs, 2001, 13 * kMs));
    ledger.note(6000, 12 * kMs); // pushes out 2001
    CHECK(ledger.may_have_started(2000, 10 * kMs, 2001, 13 * kMs));
}

TEST_CASE("spawn ledger: the kernel's last pid is readable here") {
    auto last = luaflow::loop::last_allocated_pid();
    REQUIRE(last);
    CHECK(*last > 0);
}
