// workflows.run(id, input [, { wait = true }]): starts a child execution (SPEC 3). Without `wait` it
// returns the child's execution id at once; with it, the coroutine yields until the child has ended
// and gets its report (the inspect document). The parent action does not finish before its children
// either way; the executor sees to that (daemon/exec/children.cpp).
#include "daemon/loop/uv_handle.hpp"
#include "scripting/convert.hpp"
#include "stdlib/stdlib.hpp"

#include <cstring>
#include <memory>

namespace luaflow::stdlib {

namespace {

// Waits for the child's end. The executor's callback cannot be taken back, so it holds a weak token:
// a cancelled wait (the parent's timeout or cancel) drops it and the late report finds nothing. The
// report is handed over from a timer, at the top of a libuv callback (STYLE 2.5 rule 5), never inside
// the store's commit callback that delivers it.
class ChildWait final : public scripting::Wait {
  public:
    explicit ChildWait(scripting::Task& task) : timer_(task.loop()), alive_(std::make_shared<bool>(true)) {}

    Result<void> begin(scripting::Task& task, ChildWorkflows& children, const std::string& child) {
        scripting::Task* t = &task;
        std::weak_ptr<bool> alive = alive_;
        loop::Timer* timer = &timer_;
        // The task owns this wait and the wait owns the timer: while the token lives, both are there.
        return children.wait_child(child, [alive, timer, t](const nlohmann::json& report) {
            if (alive.expired()) return;
            timer->start(0, [t, report] {
                // Built under protection on the main thread: a report that does not fit in the
                // workflow's memory must not raise outside any pcall. Then it comes back as nil.
                scripting::LuaRef table;
                (void)scripting::protected_call(t->state().L(), [&](lua_State* S) {
                    scripting::push_json(S, report);
                    table = scripting::LuaRef::pop(S);
                });
                t->wake([&table](lua_State* co) {
                    if (!table) return 0;
                    table.push(co);
                    return 1;
                });
            });
        });
    }
    void cancel() override {
        alive_.reset();
        timer_.stop();
    }

  private:
    loop::Timer timer_;
    std::shared_ptr<bool> alive_;
};

int l_run(lua_State* L) {
    scripting::Task* task = scripting::Task::current(L);
    if (!task)
        return luaL_error(L, "workflows.run: only allowed while an action runs (not at load time or inside a "
                             "coroutine the action created)");
    if (lua_type(L, 1) != LUA_TSTRING)
        return luaL_error(L, "workflows.run: the workflow id must be a string, got %s", luaL_typename(L, 1));
    std::string workflow = lua_tostring(L, 1);
    nlohmann::json input = nlohmann::json::object();
    if (!lua_isnoneornil(L, 2)) {
        if (!lua_istable(L, 2))
            return luaL_error(L, "workflows.run('%s'): the input must be a table, got %s", workflow.c_str(),
                              luaL_typename(L, 2));
        auto j = scripting::to_json(L, 2, "input");
        if (!j) return luaL_error(L, "workflows.run('%s'): %s", workflow.c_str(), j.error().message.c_str());
        if (j->is_array() && j->empty()) j = nlohmann::json::object();
        if (!j->is_object())
            return luaL_error(L, "workflows.run('%s'): the input must be a table of named fields, not a list",
                              workflow.c_str());
        input = std::move(*j);
    }
    bool wait = false;
    if (!lua_isnoneornil(L, 3)) {
        if (!lua_istable(L, 3))
            return luaL_error(L, "workflows.run('%s'): the options must be a table, got %s", workflow.c_str(),
                              luaL_typename(L, 3));
        lua_pushnil(L);
        while (lua_next(L, 3) != 0) {
            const char* key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : nullptr;
            if (!key || std::strcmp(key, "wait") != 0)
                return luaL_error(L, "workflows.run('%s'): unknown option '%s' (there is: wait)",
                                  workflow.c_str(), key ? key : luaL_typename(L, -2));
            if (!lua_isboolean(L, -1))
                return luaL_error(L, "workflows.run('%s'): wait must be a boolean, got %s", workflow.c_str(),
                                  luaL_typename(L, -1));
            wait = lua_toboolean(L, -1);
            lua_pop(L, 1);
        }
    }
    Services* services = services_of(L);
    ChildWorkflows* children = services ? services->children() : nullptr;
    if (!children) return luaL_error(L, "workflows.run: no executions are kept here");
    auto id = children->start_child(*task, workflow, input);
    if (!id) return luaL_error(L, "workflows.run('%s'): %s", workflow.c_str(), id.error().message.c_str());
    if (!wait) {
        lua_pushlstring(L, id->data(), id->size());
        return 1;
    }
    auto w = std::make_unique<ChildWait>(*task);
    if (auto r = w->begin(*task, *children, *id); !r)
        return luaL_error(L, "workflows.run('%s'): %s", workflow.c_str(), r.error().message.c_str());
    task->await(std::move(w));
    return lua_yield(L, 0);
}

} // namespace

void install_workflows(lua_State* L, int env) {
    lua_newtable(L);
    lua_pushcfunction(L, l_run);
    lua_setfield(L, -2, "run");
    lua_setfield(L, env, "workflows");
}

} // namespace luaflow::stdlib
