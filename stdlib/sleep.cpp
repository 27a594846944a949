// sleep(seconds): yields the action's coroutine and resumes it from a libuv timer (STYLE 2.5).
#include "common/duration.hpp"
#include "stdlib/stdlib.hpp"

#include "loop/uv_handle.hpp"

namespace luaflow::stdlib {

namespace {

// The timer belongs to the task's wait; cancelling closes it, so its callback never runs after.
class SleepWait final : public scripting::Wait {
  public:
    SleepWait(scripting::Task& task, Millis ms) : timer_(task.loop()) {
        scripting::Task* t = &task;
        // The task owns this wait, and the wait owns the timer: the timer cannot outlive the task,
        // so the callback may use the task pointer.
        timer_.start(static_cast<std::uint64_t>(ms), [t] { t->wake([](lua_State*) { return 0; }); });
    }
    void cancel() override { timer_.stop(); }

  private:
    loop::Timer timer_;
};

int l_sleep(lua_State* L) {
    if (lua_gettop(L) != 1)
        return luaL_error(L, "sleep: expected 1 argument (seconds), got %d", lua_gettop(L));
    double seconds = luaL_checknumber(L, 1);
    auto ms = duration_from_seconds(seconds);
    if (!ms) return luaL_argerror(L, 1, "seconds must be a finite number >= 0");
    scripting::Task* task = scripting::Task::current(L);
    if (!task)
        return luaL_error(L, "sleep: only allowed while an action runs (not at load time or inside a "
                             "coroutine the action created)");
    task->await(std::make_unique<SleepWait>(*task, *ms));
    return lua_yield(L, 0);
}

} // namespace

void install_sleep(lua_State* L, int env) {
    lua_pushcfunction(L, l_sleep);
    lua_setfield(L, env, "sleep");
}

} // namespace luaflow::stdlib
