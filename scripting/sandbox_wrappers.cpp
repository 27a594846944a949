#include "scripting/sandbox_wrappers.hpp"

#include "scripting/lua_state.hpp"

#include <cmath>

namespace luaflow::scripting {

namespace {

// How deep coroutines may resume one another: each resume nests on the C stack.
constexpr std::size_t kMaxResumeDepth = 200;

enum class CoStatus { running, suspended, normal, dead };

CoStatus status_of(lua_State* L, lua_State* co) {
    if (L == co) return CoStatus::running;
    if (lua_status(co) == LUA_YIELD) return CoStatus::suspended;
    if (lua_status(co) != 0) return CoStatus::dead;
    lua_Debug ar;
    if (lua_getstack(co, 0, &ar)) return CoStatus::normal;
    return lua_gettop(co) == 0 ? CoStatus::dead : CoStatus::suspended;
}

// raw_resume(co, ...): coroutine.resume, keeping RunGuard's chain of resumed coroutines so that the
// hook knows whether a preemption yield can travel up to the action's coroutine.
int l_raw_resume(lua_State* L) {
    lua_State* co = lua_tothread(L, 1);
    if (!co) return luaL_argerror(L, 1, "coroutine expected");
    int nargs = lua_gettop(L) - 1;
    CoStatus st = status_of(L, co);
    if (st != CoStatus::suspended) {
        static const char* const names[] = {"running", "suspended", "normal", "dead"};
        lua_pushboolean(L, 0);
        lua_pushfstring(L, "cannot resume %s coroutine", names[static_cast<int>(st)]);
        return 2;
    }
    LuaState* state = LuaState::from(L);
    RunGuard* g = state ? &state->guard() : nullptr;
    if (g && g->resume_chain.size() >= kMaxResumeDepth) {
        lua_pushboolean(L, 0);
        lua_pushfstring(L, "coroutines nested too deep (%d resume one another)",
                        static_cast<int>(kMaxResumeDepth));
        return 2;
    }
    if (!lua_checkstack(co, nargs + LUA_MINSTACK)) return luaL_error(L, "too many arguments to resume");
    bool yieldable = lua_isyieldable(L) != 0;
    if (g) {
        g->resume_chain.reserve(16);
        g->resume_chain.push_back(co);
        if (!yieldable) ++g->unyieldable_resumers;
    }
    lua_xmove(L, co, nargs);
    int rc = lua_resume(co, nargs);
    if (g) {
        g->resume_chain.pop_back();
        if (!yieldable) --g->unyieldable_resumers;
    }
    if (rc == 0 || rc == LUA_YIELD) {
        int nres = lua_gettop(co);
        if (!lua_checkstack(L, nres + 1)) {
            lua_settop(co, 0);
            return luaL_error(L, "too many results to resume");
        }
        lua_pushboolean(L, 1);
        lua_xmove(co, L, nres);
        return nres + 1;
    }
    lua_pushboolean(L, 0);
    lua_xmove(co, L, 1);
    return 2;
}

// was_preempted(co): whether co's last yield was a preemption (which its resumer passes up) rather
// than a coroutine.yield of its code.
int l_was_preempted(lua_State* L) {
    LuaState* state = LuaState::from(L);
    lua_State* co = lua_tothread(L, 1);
    bool preempted = state && co && state->guard().nested_preempted == co;
    if (preempted) state->guard().nested_preempted = nullptr;
    lua_pushboolean(L, preempted);
    return 1;
}

// pause(): yields the running coroutine as a preemption: the engine (or the resumer, for a nested one)
// resumes it later with no values.
int l_pause(lua_State* L) {
    LuaState* state = LuaState::from(L);
    if (!state || !lua_isyieldable(L)) return 0; // nowhere to pause: go on; the hook bounds it
    RunGuard& g = state->guard();
    if (L == g.task_thread)
        g.preempted = true;
    else
        g.nested_preempted = L;
    return lua_yield(L, 0);
}

// string.rep(s, n [, sep]): LuaJIT reads n as a 32-bit integer, so 2^40 gave "" instead of an error.
// A result larger than the workflow's memory fails at once, naming its size, before anything is built.
int l_rep(lua_State* L) {
    size_t len = 0, seplen = 0;
    luaL_checklstring(L, 1, &len);
    lua_Number n = luaL_checknumber(L, 2);
    luaL_optlstring(L, 3, "", &seplen);
    n = n >= 0 ? std::floor(n) : 0;
    double total = n < 1 ? 0 : n * static_cast<double>(len) + (n - 1) * static_cast<double>(seplen);
    if (total == 0) {
        lua_pushliteral(L, "");
        return 1;
    }
    LuaState* state = LuaState::from(L);
    double cap = state && state->memory_limit() ? static_cast<double>(state->memory_limit()) : 2147483647.0;
    if (total > cap || n > 2147483647.0)
        return luaL_error(L,
                          "string.rep: the result would be %.0f bytes, more than the workflow's memory "
                          "(sandbox.memory)",
                          total);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

// The functions of the sandbox that call Lua values they are given. In Lua, so that a chain of them
// (`__call = pcall`, `__tostring = tostring`, a comparator that sorts) runs Lua instructions, where the
// hook and LuaJIT's stack checks reach it: between LuaJIT's own fast functions such a chain runs in
// its VM without either (a SIGSEGV for `__call = pcall`, a hang for `__tostring = tostring`).
// coroutine.resume and coroutine.wrap pass a preemption of the coroutine they resume up to the
// action, and resume it again when the action is rescheduled (SPEC 3).
constexpr const char kPrelude[] = R"lua(
local raw = ...
local raw_pcall, raw_xpcall, raw_tostring, raw_sort = raw.pcall, raw.xpcall, raw.tostring, raw.sort
local raw_resume, was_preempted, pause, create, error = raw.resume, raw.was_preempted, raw.pause, raw.create, raw.error
local M = {}
function M.pcall(f, ...) return raw_pcall(f, ...) end
function M.xpcall(f, handler, ...) return raw_xpcall(f, handler, ...) end
function M.tostring(v) return raw_tostring(v) end
function M.sort(t, less) if less == nil then return raw_sort(t) end return raw_sort(t, less) end
local function resumed(co, ...)
  if was_preempted(co) then
    pause()
    return resumed(co, raw_resume(co))
  end
  return ...
end
function M.resume(co, ...) return resumed(co, raw_resume(co, ...)) end
local function wrapped(co, ok, ...)
  if was_preempted(co) then
    pause()
    return wrapped(co, raw_resume(co))
  end
  if not ok then error((...), 0) end
  return ...
end
function M.wrap(f)
  local co = create(f)
  return function(...) return wrapped(co, raw_resume(co, ...)) end
end
return M
)lua";

} // namespace

void install_sandbox_wrappers(lua_State* L, int env) {
    load_builtin_chunk(L, {kPrelude, sizeof kPrelude - 1}, "=sandbox");
    lua_createtable(L, 0, 10);
    lua_getfield(L, env, "pcall");
    lua_setfield(L, -2, "pcall");
    lua_getfield(L, env, "xpcall");
    lua_setfield(L, -2, "xpcall");
    lua_getfield(L, env, "tostring");
    lua_setfield(L, -2, "tostring");
    lua_getfield(L, env, "error");
    lua_setfield(L, -2, "error");
    lua_getfield(L, env, "table");
    lua_getfield(L, -1, "sort");
    lua_setfield(L, -3, "sort");
    lua_pop(L, 1);
    lua_getfield(L, env, "coroutine");
    lua_getfield(L, -1, "create");
    lua_setfield(L, -3, "create");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_raw_resume);
    lua_setfield(L, -2, "resume");
    lua_pushcfunction(L, l_was_preempted);
    lua_setfield(L, -2, "was_preempted");
    lua_pushcfunction(L, l_pause);
    lua_setfield(L, -2, "pause");
    lua_call(L, 1, 1);
    int m = lua_gettop(L);
    for (const char* name : {"pcall", "xpcall", "tostring"}) {
        lua_getfield(L, m, name);
        lua_setfield(L, env, name);
    }
    lua_getfield(L, env, "table");
    lua_getfield(L, m, "sort");
    lua_setfield(L, -2, "sort");
    lua_pop(L, 1);
    lua_getfield(L, env, "string");
    lua_getfield(L, -1, "rep");
    lua_pushcclosure(L, l_rep, 1);
    lua_setfield(L, -2, "rep");
    lua_pop(L, 1);
    lua_getfield(L, env, "coroutine");
    lua_getfield(L, m, "resume");
    lua_setfield(L, -2, "resume");
    lua_getfield(L, m, "wrap");
    lua_setfield(L, -2, "wrap");
    lua_pop(L, 2);
}

} // namespace luaflow::scripting
