#pragma once
// A libuv loop for tests of children, timers and reads: run until a condition holds, and at the end
// check that every handle was closed (nothing outlives its process or its job).
#include "loop/uv_handle.hpp"

#include <doctest/doctest.h>
#include <uv.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>

namespace luaflow::testing {

struct Loop {
    uv_loop_t uv;
    Loop() {
        // A child that exits without reading its stdin must not kill the test with SIGPIPE (luaflowd
        // ignores it too).
        std::signal(SIGPIPE, SIG_IGN);
        uv_loop_init(&uv);
    }
    ~Loop() {
        uv_run(&uv, UV_RUN_DEFAULT);
        CHECK(uv_loop_close(&uv) == 0);
    }
    Loop(const Loop&) = delete;
    Loop& operator=(const Loop&) = delete;
    // Runs the loop until cond() holds or `ms` have passed; returns cond().
    template <class F> bool run_until(F cond, std::uint64_t ms = 30'000) {
        std::uint64_t end = uv_hrtime() + ms * 1'000'000;
        loop::Timer tick(&uv); // so that a turn never blocks past the deadline
        tick.start(
            10, [] {}, 10);
        while (!cond() && uv_hrtime() < end)
            uv_run(&uv, UV_RUN_ONCE);
        return cond();
    }
};

// Gone: no such process, or a zombie waiting for whoever inherited it (not us).
inline bool process_gone(int pid) {
    if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    auto paren = text.rfind(')');
    return paren == std::string::npos || (paren + 2 < text.size() && text[paren + 2] == 'Z');
}

} // namespace luaflow::testing
