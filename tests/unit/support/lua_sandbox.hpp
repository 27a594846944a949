#pragma once
// A loop, one sandboxed Lua state with the standard library over a test's own Services, and a task
// scheduler: what the unit tests of the waiting library functions share (STYLE 2.11: a real loop).
// A test fixture derives from it, creates its Services on `loop`, calls open(), and calls close()
// first thing in its destructor, before its Services go.
#include "loop/uv_handle.hpp"
#include "scripting/lua_ref.hpp"
#include "scripting/lua_state.hpp"
#include "scripting/task.hpp"
#include "stdlib/stdlib.hpp"

#include <doctest/doctest.h>

#include <functional>
#include <memory>
#include <string>

namespace luaflow::testing {

struct LuaSandbox {
    uv_loop_t loop;
    std::shared_ptr<scripting::LuaState> state;
    std::unique_ptr<scripting::RunQueue> scheduler;

    LuaSandbox() { uv_loop_init(&loop); }
    LuaSandbox(const LuaSandbox&) = delete;
    LuaSandbox& operator=(const LuaSandbox&) = delete;
    ~LuaSandbox() {
        close();
        uv_run(&loop, UV_RUN_DEFAULT);
        CHECK(uv_loop_close(&loop) == 0);
    }

    // `services` must live until close().
    void open(stdlib::Services& services, const std::string& workflow = "wf", std::size_t memory = 8u << 20) {
        scripting::SandboxOptions o;
        o.memory_limit = memory;
        o.install_globals = [&services, workflow](lua_State* L, int env) {
            stdlib::install(L, env, services, workflow);
        };
        state = std::shared_ptr<scripting::LuaState>(std::move(scripting::LuaState::create(o).value()));
        scheduler = std::make_unique<scripting::RunQueue>(&loop);
    }
    // Drops the tasks' scheduler and the state, and lets libuv close what they held.
    void close() {
        scheduler.reset();
        state.reset();
        uv_run(&loop, UV_RUN_DEFAULT);
    }

    scripting::LuaRef compile(const std::string& code) {
        auto loaded = state->load(code, "=test");
        REQUIRE_MESSAGE(loaded, loaded.error().message);
        return scripting::LuaRef::pop(state->L());
    }

    // Turns the loop until cond() holds or `ms` have passed; a ticking timer keeps a turn from blocking
    // past the deadline.
    bool run_until(const std::function<bool()>& cond, std::uint64_t ms = 20'000) {
        std::uint64_t end = uv_hrtime() + ms * 1'000'000;
        loop::Timer tick(&loop);
        tick.start(
            10, [] {}, 10);
        // cond() is called once per turn and its last answer is the result: it may have side effects.
        for (;;) {
            if (cond()) return true;
            if (uv_hrtime() >= end) return false;
            uv_run(&loop, UV_RUN_ONCE);
        }
    }
};

} // namespace luaflow::testing
