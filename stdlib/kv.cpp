// kv.get/set/delete/incr and kv.global.*: a durable key-value store per workflow and one shared by all
// (SPEC 3). A change is committed before the call returns: set, delete and incr write into the turn's
// transaction, yield, and resume once it is committed (STYLE 2.5), so an acknowledged value survives
// kill -9. get reads at once and sees the action's own writes.
#include "scripting/convert.hpp"
#include "stdlib/deferred_wait.hpp"
#include "stdlib/stdlib.hpp"

#include <cmath>
#include <memory>

namespace luaflow::stdlib {

namespace {

constexpr std::size_t kMaxKey = 1024;

struct Call {
    KeyValue* kv = nullptr;
    std::string scope, key;
    const char* name = "";
};

// The function's name for messages: "kv.set" or "kv.global.set".
std::string name_of(lua_State* L, const char* op) {
    bool global = lua_toboolean(L, lua_upvalueindex(1));
    return std::string(global ? "kv.global." : "kv.") + op;
}

Call check_call(lua_State* L, const std::string& name) {
    Call c;
    Services* services = services_of(L);
    c.kv = services ? services->kv() : nullptr;
    if (!c.kv)
        luaL_error(L, "%s: no key-value store here (only while luaflowd runs workflows)", name.c_str());
    size_t len = 0;
    const char* key = lua_type(L, 1) == LUA_TSTRING ? lua_tolstring(L, 1, &len) : nullptr;
    if (!key) luaL_error(L, "%s: the key must be a string, got %s", name.c_str(), luaL_typename(L, 1));
    if (len == 0 || len > kMaxKey)
        luaL_error(L, "%s: the key must be 1 to %d bytes, got %d", name.c_str(), static_cast<int>(kMaxKey),
                   static_cast<int>(len));
    c.key.assign(key, len);
    c.scope = lua_toboolean(L, lua_upvalueindex(1)) ? "" : workflow_of(L);
    return c;
}

// Yields until the change is committed, then returns what `push` leaves.
int wait_durable(lua_State* L, const Call& c, const std::string& name, std::function<int(lua_State*)> push) {
    scripting::Task* task = scripting::Task::current(L);
    if (!task)
        return luaL_error(L,
                          "%s: only allowed while an action runs (not at load time or inside a coroutine the "
                          "action created)",
                          name.c_str());
    auto wait = std::make_unique<DeferredWait>(*task);
    c.kv->when_durable([wake = wait->waker(), push = std::move(push)] { wake(push); });
    task->await(std::move(wait));
    return lua_yield(L, 0);
}

int l_kv_get(lua_State* L) {
    std::string name = name_of(L, "get");
    Call c = check_call(L, name);
    auto v = c.kv->get(c.scope, c.key);
    if (!v)
        lua_pushnil(L);
    else
        scripting::push_json(L, *v);
    return 1;
}

int l_kv_set(lua_State* L) {
    std::string name = name_of(L, "set");
    Call c = check_call(L, name);
    if (lua_gettop(L) < 2 || lua_isnil(L, 2))
        return luaL_error(L, "%s: a value is required (kv.delete removes a key)", name.c_str());
    auto v = scripting::to_json(L, 2, "value");
    if (!v) return luaL_error(L, "%s('%s'): %s", name.c_str(), c.key.c_str(), v.error().message.c_str());
    c.kv->set(c.scope, c.key, *v);
    return wait_durable(L, c, name, [](lua_State*) { return 0; });
}

int l_kv_delete(lua_State* L) {
    std::string name = name_of(L, "delete");
    Call c = check_call(L, name);
    bool existed = c.kv->erase(c.scope, c.key);
    return wait_durable(L, c, name, [existed](lua_State* co) {
        lua_pushboolean(co, existed);
        return 1;
    });
}

int l_kv_incr(lua_State* L) {
    std::string name = name_of(L, "incr");
    Call c = check_call(L, name);
    double by = 1;
    if (!lua_isnoneornil(L, 2)) {
        if (lua_type(L, 2) != LUA_TNUMBER)
            return luaL_error(L, "%s('%s'): the increment must be a number, got %s", name.c_str(),
                              c.key.c_str(), luaL_typename(L, 2));
        by = lua_tonumber(L, 2);
    }
    auto current = c.kv->get(c.scope, c.key);
    if (current && !current->is_number())
        return luaL_error(L, "%s('%s'): the value is not a number: %s", name.c_str(), c.key.c_str(),
                          current->dump().c_str());
    double value = (current ? current->get<double>() : 0.0) + by;
    if (!std::isfinite(value))
        return luaL_error(L, "%s('%s'): the result is not finite", name.c_str(), c.key.c_str());
    nlohmann::json stored = value == std::floor(value) && std::fabs(value) < 9.0e15
                                ? nlohmann::json(static_cast<std::int64_t>(value))
                                : nlohmann::json(value);
    c.kv->set(c.scope, c.key, stored);
    return wait_durable(L, c, name, [value](lua_State* co) {
        lua_pushnumber(co, value);
        return 1;
    });
}

void push_functions(lua_State* L, bool global) {
    const std::pair<const char*, lua_CFunction> fns[] = {
        {"get", l_kv_get}, {"set", l_kv_set}, {"delete", l_kv_delete}, {"incr", l_kv_incr}};
    for (const auto& [name, fn] : fns) {
        lua_pushboolean(L, global);
        lua_pushcclosure(L, fn, 1);
        lua_setfield(L, -2, name);
    }
}

} // namespace

void install_kv(lua_State* L, int env) {
    lua_newtable(L);
    push_functions(L, false);
    lua_newtable(L);
    push_functions(L, true);
    lua_setfield(L, -2, "global");
    lua_setfield(L, env, "kv");
}

} // namespace luaflow::stdlib
