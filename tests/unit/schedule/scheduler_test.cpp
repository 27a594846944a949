// The scheduler on a real loop and store, with its wall clock in the test's hands: steps of the clock
// never fire an occurrence twice, and a forward jump counts as missed occurrences.
#include "daemon/schedule/scheduler.hpp"
#include "daemon/store/executions.hpp"
#include "daemon/store/schedules.hpp"
#include "loop/virtual_time.hpp"
#include "tests/unit/support/engine.hpp"

#include <chrono>

#include <doctest/doctest.h>

using namespace luaflow;

namespace {

constexpr std::int64_t kSecond = 1'000'000'000;
constexpr std::int64_t kStart = 1'800'000'000; // 2027-01-15T08:00:00Z, a whole minute

// The engine with a scheduler on it, whose wall clock is `now`.
struct Rig : testing::TestEngine {
    std::unique_ptr<schedule::Scheduler> schedules;
    std::int64_t now =
        (kStart + 5) * kSecond; // five seconds into a minute: the first fire is the next minute

    explicit Rig(const std::string& workflow) : TestEngine(Files{{"wf.lua", workflow}}) {
        schedules =
            std::make_unique<schedule::Scheduler>(&loop, *db, *registry, *executor, [this] { return now; });
        schedules->start();
    }
    ~Rig() { schedules.reset(); }
    // The daemon stops, and a new process starts at `process_started` (seconds, with a fraction) on the
    // same store; its scheduler starts `starting` later.
    void restart(double process_started, double starting) {
        db->flush();
        schedules.reset();
        const auto started_ns = static_cast<std::int64_t>(process_started * kSecond);
        now = started_ns + static_cast<std::int64_t>(starting * kSecond);
        schedules = std::make_unique<schedule::Scheduler>(
            &loop, *db, *registry, *executor, [this] { return now; }, started_ns);
        schedules->start();
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    std::vector<bool> catchups() {
        std::vector<bool> out;
        for (const auto& e : store::list_executions(*db, {"wf", std::nullopt, 1000})) {
            auto row = store::find_execution(*db, e["id"].get<std::string>());
            out.insert(out.begin(), row->trigger.contains("catchup"));
        }
        return out;
    }
    void at(std::int64_t unix_seconds, std::int64_t extra_ns = kSecond / 10) {
        now = unix_seconds * kSecond + extra_ns;
        schedules->fire_due();
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    std::vector<std::int64_t> fired() {
        std::vector<std::int64_t> out;
        for (const auto& e : store::list_executions(*db, {"wf", std::nullopt, 1000})) {
            auto row = store::find_execution(*db, e["id"].get<std::string>());
            out.insert(out.begin(), *row->scheduled_for / 1000);
        }
        return out;
    }
};

const char* kMinutely = R"(return workflow { schedule = { rrule = "FREQ=MINUTELY", tz = "UTC" },
  actions = { a = { run = function() end } } })";

} // namespace

TEST_CASE("a step back of the wall clock does not fire an occurrence twice") {
    Rig rig(kMinutely);
    CHECK(rig.schedules->next_fire("wf") == kStart + 60);
    rig.at(kStart + 60);
    CHECK(rig.fired() == std::vector<std::int64_t>{kStart + 60});
    rig.now = (kStart + 30) * kSecond; // the clock is set back 30 s
    rig.schedules->refresh("wf");      // what the timerfd's cancellation makes it do
    CHECK(rig.schedules->next_fire("wf") == kStart + 120);
    rig.at(kStart + 60);
    CHECK(rig.fired().size() == 1);
    rig.at(kStart + 120);
    CHECK(rig.fired() == std::vector<std::int64_t>{kStart + 60, kStart + 120});
    CHECK(store::find_schedule(*rig.db, "wf", "rrule:FREQ=MINUTELY@UTC")->handled == kStart + 120);
}

TEST_CASE("a forward jump of the clock counts the passed-over occurrences as missed") {
    Rig rig(kMinutely);
    rig.at(kStart + 60);
    rig.at(kStart + 60 + 10 * 60 + 5); // the machine slept for ten minutes
    // catchup = "none": the ten that passed while it slept are dropped and counted, the last of them
    // (5 s ago) too: like after downtime, only the current second still fires.
    CHECK(store::skipped_count(*rig.db, "wf") == 10);
    CHECK(rig.fired() == std::vector<std::int64_t>{kStart + 60});
    CHECK(rig.schedules->next_fire("wf") == kStart + 720);
}

TEST_CASE("a late wake-up within the tolerance still fires the occurrence, once") {
    Rig rig(kMinutely);
    rig.at(kStart + 60 + 30); // 30 s late: busy, not passed over
    rig.at(kStart + 60 + 31);
    CHECK(rig.fired() == std::vector<std::int64_t>{kStart + 60});
    CHECK(store::skipped_count(*rig.db, "wf") == 0);
}

TEST_CASE("two rules naming the same instant fire the workflow once") {
    Rig rig(
        R"(return workflow { schedule = { { rrule = "FREQ=MINUTELY", tz = "UTC" }, { cron = "* * * * *", tz = "UTC" } },
  actions = { a = { run = function() end } } })");
    rig.at(kStart + 60);
    rig.at(kStart + 120);
    CHECK(rig.fired() == std::vector<std::int64_t>{kStart + 60, kStart + 120});
}

TEST_CASE("a restart keeps the stored series start: steps count from the first load, not the restart") {
    Rig rig(R"(return workflow { schedule = { rrule = "FREQ=MINUTELY;INTERVAL=7", tz = "UTC" },
  actions = { a = { run = function() end } } })");
    CHECK(rig.schedules->next_fire("wf") == kStart + 420); // dtstart: the first load, to the minute
    rig.db->flush();
    rig.schedules.reset(); // the daemon stops; 1000 s later it starts again on the same store
    rig.now = (kStart + 1000) * kSecond;
    rig.schedules = std::make_unique<schedule::Scheduler>(&rig.loop, *rig.db, *rig.registry, *rig.executor,
                                                          [&rig] { return rig.now; });
    rig.schedules->start();
    CHECK(rig.schedules->next_fire("wf") == kStart + 1260); // not 960 + 420
    CHECK(store::skipped_count(*rig.db, "wf") == 2);        // 420 and 840 passed while it was down
}

namespace {

std::string every_four_seconds(const char* catchup) {
    return std::string(
               R"(return workflow { schedule = { rrule = "FREQ=SECONDLY;INTERVAL=4", tz = "UTC", catchup = ")") +
           catchup + R"(" }, actions = { a = { run = function() end } } })";
}

} // namespace

TEST_CASE("an occurrence before the process started was missed, even in the second it started") {
    // The series starts at kStart (the load minute): every 4 s from there. The daemon stops just after
    // the occurrence at +8 and starts again 0.5 s after the one at +16, which it must not run.
    for (const char* catchup : {"none", "latest"}) {
        CAPTURE(catchup);
        Rig rig(every_four_seconds(catchup));
        rig.at(kStart + 8);
        REQUIRE(rig.fired() == std::vector<std::int64_t>{kStart + 8});
        rig.restart(kStart + 16.5, 0.2);
        rig.schedules->fire_due();
        if (std::string(catchup) == "none") {
            CHECK(rig.fired() == std::vector<std::int64_t>{kStart + 8});
            CHECK(store::skipped_count(*rig.db, "wf") == 2); // +12 and +16
        } else {
            CHECK(rig.fired() == std::vector<std::int64_t>{kStart + 8, kStart + 16}); // once, as a catch-up
            CHECK(rig.catchups() == std::vector<bool>{false, true});
            CHECK(store::skipped_count(*rig.db, "wf") == 1);
        }
        CHECK(rig.schedules->next_fire("wf") == kStart + 20);
    }
}

TEST_CASE("an occurrence after the process started fires at once while the daemon is starting") {
    Rig rig(every_four_seconds("none"));
    rig.at(kStart + 8);
    rig.restart(kStart + 15.9, 0.6); // started before +16, its scheduler after it
    CHECK(rig.schedules->next_fire("wf") == kStart + 16);
    rig.schedules->fire_due();
    CHECK(rig.fired() == std::vector<std::int64_t>{kStart + 8, kStart + 16});
    CHECK(rig.catchups() == std::vector<bool>{false, false}); // late, not a catch-up
    CHECK(store::skipped_count(*rig.db, "wf") == 1);          // +12 only
    CHECK(rig.schedules->next_fire("wf") == kStart + 20);
}

TEST_CASE("an occurrence before an enable was missed, even in the second of the enable") {
    Rig rig(every_four_seconds("none"));
    rig.at(kStart + 8);
    store::set_enabled_override(rig.db->write(), "wf", false);
    rig.schedules->refresh("wf");
    rig.now = (kStart + 16) * kSecond + kSecond / 2;
    store::set_enabled_override(rig.db->write(), "wf", true);
    rig.schedules->refresh("wf");
    rig.schedules->fire_due();
    CHECK(rig.fired() == std::vector<std::int64_t>{kStart + 8});
    CHECK(store::skipped_count(*rig.db, "wf") == 2);
    CHECK(rig.schedules->next_fire("wf") == kStart + 20);
}

TEST_CASE("the wake-up before an instant fires nothing; the fire is stamped with the wake-up at it") {
    Rig rig(kMinutely);
    rig.at(kStart + 59, kSecond - schedule::kWarmAheadNs); // the early wake-up (kWarmAheadNs before)
    CHECK(rig.fired().empty());
    CHECK(rig.schedules->lateness().summary()["count"] == 0);
    rig.at(kStart + 60, 250'000); // the timer at the instant, woken 0.25 ms late
    REQUIRE(rig.fired() == std::vector<std::int64_t>{kStart + 60});
    auto id = store::list_executions(*rig.db, {"wf", std::nullopt, 1})[0]["id"].get<std::string>();
    // The run's start is the wake-up on the scheduler's clock (here the test's), not when submit ran.
    CHECK(store::find_execution(*rig.db, id)->started_at == (kStart + 60) * 1000);
    CHECK(rig.schedules->lateness().summary()["p50_ms"].get<double>() == doctest::Approx(0.25));
}

TEST_CASE("on virtual time the scheduler runs through two days of hourly fires at once") {
    // The clock luaflowctl test --fast uses: the scheduler's own wall clock and timer follow it.
    const std::int64_t shift_before = clock_shift();
    auto started = std::chrono::steady_clock::now();
    std::vector<std::int64_t> fired;
    {
        testing::TestEngine rig(testing::TestEngine::Files{
            {"wf.lua",
             R"(return workflow { schedule = { rrule = "FREQ=HOURLY;BYMINUTE=0;BYSECOND=0", tz = "UTC" },
  actions = { a = { run = function() return { at = time.now() } end } } })"}});
        std::int64_t begun = now_unix_ms();
        loop::VirtualTime clock(&rig.loop);
        schedule::Scheduler schedules(&rig.loop, *rig.db, *rig.registry, *rig.executor);
        schedules.start();
        auto count = [&] { return store::list_executions(*rig.db, {"wf", std::nullopt, 1000}).size(); };
        CHECK(clock.run([&] { return count() >= 48; }));
        for (const auto& e : store::list_executions(*rig.db, {"wf", std::nullopt, 1000}))
            fired.insert(fired.begin(),
                         *store::find_execution(*rig.db, e["id"].get<std::string>())->scheduled_for);
        CHECK(clock.skipped_ms() >= 47 * 3'600'000);
        CHECK(now_unix_ms() - begun >= 47 * 3'600'000);
        schedules.stop();
    }
    shift_clock(shift_before - clock_shift());
    CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count() < 10.0);
    REQUIRE(fired.size() >= 48);
    // Every hour on the hour, none twice, none missed.
    for (std::size_t i = 0; i < fired.size(); ++i) {
        CHECK(fired[i] % 3'600'000 == 0);
        if (i > 0) CHECK(fired[i] - fired[i - 1] == 3'600'000);
    }
}
