// loop::VirtualTime (luaflowctl test --fast): timers elapse at once, in due order, with the shared clock
// moved to each; real work (a child process) keeps the loop on real time, and a timer that falls due
// while it runs fires then; a loop with only background timers left counts as having nothing to wait
// for; without the clock, timers are real as ever.
#include "common/time_format.hpp"
#include "loop/child_process.hpp"
#include "loop/uv_handle.hpp"
#include "loop/virtual_time.hpp"
#include "tests/unit/support/test_loop.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

using namespace luaflow;

namespace {

// Puts the shared clock back when a test has moved it.
struct ClockReset {
    std::int64_t before = clock_shift();
    ~ClockReset() { shift_clock(before - clock_shift()); }
};

double real_seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

} // namespace

TEST_CASE("virtual time fires timers at once, in due order, with the clock moved to each") {
    ClockReset reset;
    testing::Loop loop;
    std::vector<std::pair<std::string, std::int64_t>> fired; // name, clock at the fire
    const std::int64_t start = now_unix_ms();
    auto started = std::chrono::steady_clock::now();
    {
        loop::VirtualTime clock(&loop.uv);
        loop::Timer hour(&loop.uv), minute(&loop.uv), day(&loop.uv), chained(&loop.uv);
        hour.start(3'600'000, [&] { fired.emplace_back("hour", now_unix_ms() - start); });
        day.start(86'400'000, [&] { fired.emplace_back("day", now_unix_ms() - start); });
        minute.start(60'000, [&] {
            fired.emplace_back("minute", now_unix_ms() - start);
            // Armed from a callback: counted from the moved clock.
            chained.start(120'000, [&] { fired.emplace_back("chained", now_unix_ms() - start); });
        });
        bool done = false;
        day.start(86'400'000, [&] {
            fired.emplace_back("day", now_unix_ms() - start);
            done = true;
        });
        CHECK(clock.run([&] { return done; }));
        CHECK(clock.skipped_ms() >= 86'400'000 - 1000);
    }
    CHECK(real_seconds_since(started) < 2.0);
    REQUIRE(fired.size() == 4);
    CHECK(fired[0].first == "minute");
    CHECK(fired[1].first == "chained");
    CHECK(fired[2].first == "hour");
    CHECK(fired[3].first == "day");
    // Each at its due time on the moved clock (a little real time passes between).
    CHECK(fired[0].second >= 60'000);
    CHECK(fired[0].second < 61'000);
    CHECK(fired[1].second >= 180'000);
    CHECK(fired[1].second < 181'000);
    CHECK(fired[2].second >= 3'600'000);
    CHECK(fired[3].second >= 86'400'000);
    CHECK(fired[3].second < 86'401'000);
}

TEST_CASE("virtual time waits for real work, and a timer due meanwhile fires then") {
    ClockReset reset;
    testing::Loop loop;
    std::vector<std::string> order;
    {
        loop::VirtualTime clock(&loop.uv);
        loop::Timer soon(&loop.uv), late(&loop.uv);
        // A child that takes 300 ms of real time; the 100 ms timer falls due while it runs, the hour
        // one only when nothing real is left.
        loop::ChildOptions opts;
        opts.argv = {"/bin/sh", "-c", "sleep 0.3"};
        std::optional<loop::ChildExit> exit;
        loop::ChildCallbacks callbacks;
        callbacks.on_exit = [&](const loop::ChildExit& e) {
            exit = e;
            order.push_back("child");
        };
        auto child = loop::ChildProcess::spawn(&loop.uv, opts, std::move(callbacks));
        REQUIRE(child);
        soon.start(100, [&] { order.push_back("100ms"); });
        bool done = false;
        late.start(3'600'000, [&] {
            order.push_back("hour");
            done = true;
        });
        CHECK(clock.run([&] { return done; }));
        CHECK(clock.skipped_ms() > 3'000'000);
    }
    CHECK(order == std::vector<std::string>{"100ms", "child", "hour"});
}

TEST_CASE("virtual time: nothing but background timers is nothing to wait for") {
    ClockReset reset;
    testing::Loop loop;
    int sweeps = 0;
    loop::VirtualTime clock(&loop.uv);
    loop::Timer sweeper(&loop.uv);
    sweeper.start(
        1000, [&] { ++sweeps; }, 1000);
    sweeper.unref();
    CHECK_FALSE(clock.run([] { return false; }));
    CHECK(sweeps == 0);
    // A stopped timer is no longer waited for either.
    loop::Timer stopped(&loop.uv);
    stopped.start(5000, [] {});
    stopped.stop();
    CHECK_FALSE(clock.run([] { return false; }));
    sweeper.stop();
}

TEST_CASE("without a virtual clock timers take real time") {
    testing::Loop loop;
    loop::Timer t(&loop.uv);
    bool fired = false;
    auto started = std::chrono::steady_clock::now();
    t.start(50, [&] { fired = true; });
    uv_run(&loop.uv, UV_RUN_DEFAULT);
    CHECK(fired);
    CHECK(real_seconds_since(started) >= 0.045);
}
