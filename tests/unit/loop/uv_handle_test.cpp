// The handle wrappers: a Timer counts from when it is armed, even late in a long loop turn; an Idle
// runs at every turn until stopped; a Signal runs its callback on the loop.
#include "loop/uv_handle.hpp"

#include <doctest/doctest.h>

#include <csignal>

TEST_CASE("a timer armed late in a long loop turn does not fire early") {
    uv_loop_t loop;
    uv_loop_init(&loop);
    std::uint64_t armed_ns = 0, fired_ns = 0;
    {
        luaflow::loop::Timer kick(&loop), sleeper(&loop);
        kick.start(0, [&] {
            // A turn that takes 300 ms (thousands of actions started at once), then a 200 ms timer.
            std::uint64_t until = uv_hrtime() + 300'000'000;
            while (uv_hrtime() < until) {
            }
            armed_ns = uv_hrtime();
            sleeper.start(200, [&] { fired_ns = uv_hrtime(); });
        });
        while (fired_ns == 0)
            uv_run(&loop, UV_RUN_ONCE);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    CHECK((fired_ns - armed_ns) / 1'000'000 >= 199);
}

TEST_CASE("an idle runs at every turn until stopped, and may stop itself") {
    uv_loop_t loop;
    uv_loop_init(&loop);
    int runs = 0;
    {
        luaflow::loop::Idle idle(&loop);
        idle.start([&] {
            if (++runs == 3) idle.stop();
        });
        CHECK(idle.active());
        uv_run(&loop, UV_RUN_DEFAULT); // returns once nothing is active: the idle stopped itself
        CHECK_FALSE(idle.active());
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
    CHECK(runs == 3);
}

TEST_CASE("a signal's callback runs on the loop; a bad signal number is an error") {
    uv_loop_t loop;
    uv_loop_init(&loop);
    int seen = 0;
    {
        luaflow::loop::Signal usr1(&loop), bad(&loop);
        REQUIRE(usr1.start(SIGUSR1, [&] { ++seen; }) == 0);
        CHECK(bad.start(9999, [] {}) == UV_EINVAL);
        luaflow::loop::Timer kick(&loop);
        kick.start(0, [] { std::raise(SIGUSR1); });
        while (seen == 0)
            uv_run(&loop, UV_RUN_ONCE);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
    CHECK(seen == 1);
}
