// workflows.run(id, input [, { wait = true }]): starts a child execution (SPEC 3). Without `wait` it
// returns the child's execution id at once; with it, the coroutine yields until the child has ended
// and gets its report (the inspect document). The parent action does not finish before its children
// either way; the executor sees to that (daemon/exec/children.cpp).
#include "scripting/convert.hpp"
#include "stdlib/deferred_wait.hpp"
#include "stdlib/stdlib.hpp"

#include <cstring>
#include <memory>

namespace luaflow::stdlib {

namespace {

// The child's report as the call's value. Built under protection on the main thread: a report that
// does not fit in the workflow's memory must not raise outside any pcall; then the call returns nil.
Push push_report(nlohmann::json report) {
    return [report = std::move(report)](lua_State* co) {
        scripting::LuaRef table;
        (void)scripting::protected_call(scripting::LuaState::from(co)->L(), [&](lua_State* S) {
            scripting::push_json(S, report);
            table = scripting::LuaRef::pop(S);
        });
        if (!table) return 0;
        table.push(co);
        return 1;
    };
}

int l_workflows_run(lua_State* L) {
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
    // The report comes from the store's commit callback: the resume is deferred to a timer.
    auto child_wait = std::make_unique<DeferredWait>(*task);
    auto waited = children->wait_child(
        *id, [wake = child_wait->waker()](const nlohmann::json& report) { wake(push_report(report)); });
    if (!waited)
        return luaL_error(L, "workflows.run('%s'): %s", workflow.c_str(), waited.error().message.c_str());
    task->await(std::move(child_wait));
    return lua_yield(L, 0);
}

} // namespace

void install_workflows(lua_State* L, int env) {
    lua_newtable(L);
    lua_pushcfunction(L, l_workflows_run);
    lua_setfield(L, -2, "run");
    lua_setfield(L, env, "workflows");
}

} // namespace luaflow::stdlib
