// The coroutine bridge on a real loop: waits resume from libuv, preemption keeps the loop turning,
// deadlines stop runaway code even under pcall, and cancel drops a waiting task.
#include "scripting/task.hpp"
#include "stdlib/stdlib.hpp"
#include "tests/unit/support/lua_sandbox.hpp"

#include <doctest/doctest.h>

#include <uv.h>

#include <optional>

using namespace luaflow;
using namespace luaflow::scripting;

namespace {

class NullServices final : public stdlib::Services {
  public:
    explicit NullServices(uv_loop_t* loop) : loop_(loop) {}
    uv_loop_t* loop() override { return loop_; }
    void log_line(const Task*, const std::string&, stdlib::LogLevel, const std::string& line) override {
        lines.push_back(line);
    }
    std::vector<std::string> lines;

  private:
    uv_loop_t* loop_;
};

struct Fixture : testing::LuaSandbox {
    std::unique_ptr<NullServices> services;

    Fixture() {
        services = std::make_unique<NullServices>(&loop);
        open(*services, "test");
    }
    ~Fixture() { close(); }
};

} // namespace

TEST_CASE("a task returns its results") {
    Fixture f;
    LuaRef fn = f.compile("local x = ... return x * 2, 'ok'");
    lua_pushnumber(f.state->L(), 21);
    LuaRef arg = LuaRef::pop(f.state->L());
    std::optional<TaskOutcome> out;
    double value = 0;
    Task t(f.state, *f.scheduler, {}, [&](Task& task, const TaskOutcome& o) {
        out = o;
        value = lua_tonumber(task.results_thread(), 1);
    });
    REQUIRE(t.start(fn, arg, 0));
    REQUIRE(out);
    CHECK(out->kind == TaskOutcome::Kind::returned);
    CHECK(value == 42);
}

TEST_CASE("sleep yields and a libuv timer resumes many tasks at once") {
    Fixture f;
    LuaRef fn = f.compile("sleep(0.05) return 1");
    int done = 0;
    std::vector<std::unique_ptr<Task>> tasks;
    for (int i = 0; i < 50; ++i) {
        tasks.push_back(
            std::make_unique<Task>(f.state, *f.scheduler, TaskLabel{}, [&](Task&, const TaskOutcome& o) {
                CHECK(o.kind == TaskOutcome::Kind::returned);
                ++done;
            }));
        REQUIRE(tasks.back()->start(fn, LuaRef(), 0));
    }
    CHECK(done == 0);
    std::uint64_t t0 = uv_hrtime();
    uv_run(&f.loop, UV_RUN_DEFAULT);
    CHECK(done == 50);
    CHECK((uv_hrtime() - t0) / 1'000'000 < 1000); // together, not one after the other
}

TEST_CASE("a spinning task is preempted so timers still fire, and stopped at its deadline even under pcall") {
    Fixture f;
    LuaRef spin = f.compile("while true do pcall(function() while true do end end) end");
    std::optional<TaskOutcome> out;
    Task t(f.state, *f.scheduler, {}, [&](Task&, const TaskOutcome& o) { out = o; });
    f.state->guard().deadline_message = "timed out after 300ms";
    REQUIRE(t.start(spin, LuaRef(), uv_hrtime() + 300'000'000));
    CHECK_FALSE(out);
    // A timer that must fire while the task spins.
    int ticks = 0;
    uv_timer_t timer;
    uv_timer_init(&f.loop, &timer);
    timer.data = &ticks;
    uv_timer_start(
        &timer, [](uv_timer_t* h) { ++*static_cast<int*>(h->data); }, 10, 10);
    while (!out)
        uv_run(&f.loop, UV_RUN_ONCE);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr);
    CHECK(out->kind == TaskOutcome::Kind::timed_out);
    CHECK(out->message == "timed out after 300ms");
    CHECK(ticks >= 10);
}

TEST_CASE("cancel drops a waiting task without calling done") {
    Fixture f;
    LuaRef fn = f.compile("sleep(60) return 1");
    bool called = false;
    Task t(f.state, *f.scheduler, {}, [&](Task&, const TaskOutcome&) { called = true; });
    REQUIRE(t.start(fn, LuaRef(), 0));
    t.cancel();
    uv_run(&f.loop, UV_RUN_DEFAULT); // returns at once: the timer was stopped
    CHECK_FALSE(called);
}

TEST_CASE("errors, memory and a bare coroutine.yield end the task with a message") {
    Fixture f;
    auto run = [&](const std::string& code) {
        LuaRef fn = f.compile(code);
        std::optional<TaskOutcome> out;
        Task t(f.state, *f.scheduler, {}, [&](Task&, const TaskOutcome& o) { out = o; });
        REQUIRE(t.start(fn, LuaRef(), 0));
        while (!out)
            uv_run(&f.loop, UV_RUN_ONCE);
        return *out;
    };
    TaskOutcome e = run("error('boom')");
    CHECK(e.kind == TaskOutcome::Kind::error);
    CHECK(e.message == "test:1: boom");
    TaskOutcome m = run("local t = {} for i = 1, 1e8 do t[i] = string.rep('y', 100) .. i end");
    CHECK(m.kind == TaskOutcome::Kind::memory);
    CHECK(m.message.find("memory limit exceeded") != std::string::npos);
    TaskOutcome y = run("coroutine.yield(1)");
    CHECK(y.kind == TaskOutcome::Kind::error);
    CHECK(y.message.find("coroutine.yield outside a coroutine") != std::string::npos);
    // The state still works after all of that.
    CHECK(run("return 1").kind == TaskOutcome::Kind::returned);
}

TEST_CASE("sleep outside an action and inside a user coroutine is refused") {
    Fixture f;
    LuaRef fn =
        f.compile("local co = coroutine.create(function() sleep(1) end) local ok, err = coroutine.resume(co) "
                  "return ok, err");
    std::string err;
    Task t(f.state, *f.scheduler, {}, [&](Task& task, const TaskOutcome&) {
        lua_State* co = task.results_thread();
        CHECK_FALSE(lua_toboolean(co, 1));
        err = lua_tostring(co, 2);
    });
    REQUIRE(t.start(fn, LuaRef(), 0));
    CHECK(err.find("sleep: only allowed while an action runs") != std::string::npos);
}

// Issue 7, item 1: a result handed back into a state at its cap. wake() builds it under protection;
// when it does not fit, the task ends with `memory` instead of a panic outside any pcall.
namespace {

struct HandWait final : Wait {
    void cancel() override {}
};

// park(): waits until the test wakes the task by hand.
int l_park(lua_State* L) {
    Task::current(L)->await(std::make_unique<HandWait>());
    return lua_yield(L, 0);
}

} // namespace

TEST_CASE("a wait's result that does not fit in a full state ends the task with memory, or is handed back") {
    Fixture f;
    f.close();
    f.open(*f.services, "test", 2u << 20);
    f.state->push_env(f.state->L());
    lua_pushcfunction(f.state->L(), l_park);
    lua_setfield(f.state->L(), -2, "park");
    lua_pop(f.state->L(), 1);
    LuaRef fn = f.compile("local v = park() return type(v) == 'table' and #v or v");
    // A list of small tables kept in a global: the refused allocation is a small one, so the state is
    // full to the byte while the task waits.
    LuaRef fill = f.compile("pcall(function() while true do hog = { hog } end end)");
    for (std::size_t size : {std::size_t(10), std::size_t(1) << 20}) {
        std::optional<TaskOutcome> out;
        double got = -1;
        Task t(f.state, *f.scheduler, {}, [&](Task& task, const TaskOutcome& o) {
            out = o;
            if (o.kind == TaskOutcome::Kind::returned) got = lua_tonumber(task.results_thread(), 1);
        });
        REQUIRE(t.start(fn, LuaRef(), 0));
        REQUIRE_MESSAGE(!out, out->message);
        // The last round's list goes first.
        REQUIRE(protected_call(f.state->L(), [](lua_State* L) {
            lua_pushnil(L);
            lua_setglobal(L, "hog");
        }));
        collect_garbage(*f.state);
        REQUIRE(protected_call_within(f.state->L(), 0, [&](lua_State* L) {
            fill.push(L);
            lua_call(L, 0, 0);
        }));
        CHECK(f.state->memory_used() + 1024 > f.state->memory_limit());
        // A table of `size` entries: ten fit in the daemon's reserve, a million do not.
        t.wake([size](lua_State* L) {
            lua_createtable(L, static_cast<int>(size), 0);
            for (std::size_t i = 1; i <= size; ++i) {
                lua_pushboolean(L, 1);
                lua_rawseti(L, -2, static_cast<int>(i));
            }
            return 1;
        });
        REQUIRE(f.run_until([&] { return out.has_value(); }));
        if (size == 10) {
            CHECK(out->kind == TaskOutcome::Kind::returned);
            CHECK(got == 10);
        } else {
            CHECK(out->kind == TaskOutcome::Kind::memory);
            CHECK(out->message.find("could not be handed back") != std::string::npos);
        }
    }
}

TEST_CASE("a deferred start runs at the run queue's next pass, and one it defers runs in the same pass") {
    Fixture f;
    LuaRef fn = f.compile("local x = ... return x + 1");
    lua_pushnumber(f.state->L(), 1);
    LuaRef arg = LuaRef::pop(f.state->L());
    std::vector<double> results;
    std::unique_ptr<Task> first, second;
    f.scheduler->defer([&] {
        first =
            std::make_unique<Task>(f.state, *f.scheduler, TaskLabel{}, [&](Task& task, const TaskOutcome&) {
                results.push_back(lua_tonumber(task.results_thread(), 1));
                // Its dependent, as the executor starts it when an action ends at once.
                f.scheduler->defer([&] {
                    second = std::make_unique<Task>(
                        f.state, *f.scheduler, TaskLabel{}, [&](Task& t, const TaskOutcome&) {
                            results.push_back(lua_tonumber(t.results_thread(), 1));
                        });
                    REQUIRE(second->start(fn, arg, 0));
                });
            });
        REQUIRE(first->start(fn, arg, 0));
    });
    CHECK(results.empty()); // deferred: nothing ran yet
    CHECK(f.scheduler->runnable() == 1);
    uv_run(&f.loop, UV_RUN_NOWAIT); // one loop turn: one pass of the run queue
    CHECK(results == std::vector<double>{2, 2});
    CHECK(f.scheduler->runnable() == 0);
}

TEST_CASE("deferred starts run at the run queue's next pass, in order") {
    Fixture f;
    std::vector<int> ran;
    for (int i = 0; i < 3; ++i)
        f.scheduler->defer([&ran, i] { ran.push_back(i); });
    CHECK(ran.empty());
    CHECK(f.scheduler->runnable() == 3);
    uv_run(&f.loop, UV_RUN_NOWAIT);
    CHECK(ran == std::vector<int>{0, 1, 2});
    CHECK(f.scheduler->runnable() == 0);
}

TEST_CASE("a start deferred during a pass runs before the starts that were already waiting") {
    uv_loop_t loop;
    uv_loop_init(&loop);
    std::vector<std::string> order;
    {
        RunQueue queue(&loop);
        // a1 ends and starts its dependents a2 and a3 (in that order); b was waiting before them.
        queue.defer([&] {
            order.push_back("a1");
            queue.defer([&] { order.push_back("a2"); });
            queue.defer([&] { order.push_back("a3"); });
        });
        queue.defer([&] { order.push_back("b"); });
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    CHECK(order == std::vector<std::string>{"a1", "a2", "a3", "b"});
}
