// notify(notifier, { subject =, body = }): a message to one of the config's notifiers (SPEC 3 and 8).
// The row is written into the turn's transaction and the call returns once it is committed, as kv.set
// does: what notify() acknowledged goes out even after kill -9. The sender delivers it after that.
#include "stdlib/deferred_wait.hpp"
#include "stdlib/stdlib.hpp"

#include <memory>

namespace luaflow::stdlib {

namespace {

constexpr std::size_t kMaxSubject = 1000;
constexpr std::size_t kMaxBody = 64 * 1024;

// The string field `name` of the table at 2, or "" when absent; raises on another type or a long one.
std::string text_field(lua_State* L, const char* name, std::size_t max) {
    lua_getfield(L, 2, name);
    std::string out;
    if (lua_type(L, -1) == LUA_TSTRING) {
        size_t len = 0;
        const char* s = lua_tolstring(L, -1, &len);
        if (len > max) luaL_error(L, "notify: %s is longer than %d bytes", name, static_cast<int>(max));
        out.assign(s, len);
    } else if (!lua_isnil(L, -1)) {
        luaL_error(L, "notify: %s must be a string, got %s", name, luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    return out;
}

int l_notify(lua_State* L) {
    if (lua_type(L, 1) != LUA_TSTRING)
        return luaL_error(L, "notify: expected a notifier name (a string), got %s", luaL_typename(L, 1));
    if (lua_type(L, 2) != LUA_TTABLE)
        return luaL_error(L, "notify: expected { subject = \"...\", body = \"...\" }, got %s",
                          luaL_typename(L, 2));
    std::string notifier = lua_tostring(L, 1);
    std::string subject = text_field(L, "subject", kMaxSubject);
    std::string body = text_field(L, "body", kMaxBody);
    if (subject.empty() && body.empty()) return luaL_error(L, "notify: give a subject, a body or both");
    Services* services = services_of(L);
    Notifications* n = services ? services->notifications() : nullptr;
    scripting::Task* task = scripting::Task::current(L);
    if (!n || !task)
        return luaL_error(L,
                          "notify: only allowed while an action runs (not at load time or inside a coroutine "
                          "the action created)");
    if (auto r = n->notify(task->label(), notifier, subject, body); !r)
        return luaL_error(L, "notify: %s", r.error().message.c_str());
    auto wait = std::make_unique<DeferredWait>(*task);
    n->when_durable([wake = wait->waker()] { wake([](lua_State*) { return 0; }); });
    task->await(std::move(wait));
    return lua_yield(L, 0);
}

} // namespace

void install_notify(lua_State* L, int env) {
    lua_pushcfunction(L, l_notify);
    lua_setfield(L, env, "notify");
}

} // namespace luaflow::stdlib
