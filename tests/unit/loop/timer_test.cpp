// loop::Timer counts from when it is armed, even late in a long loop turn.
#include "loop/uv_handle.hpp"

#include <doctest/doctest.h>

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
