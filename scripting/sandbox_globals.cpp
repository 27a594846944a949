#include "scripting/sandbox_globals.hpp"

#include "scripting/lazy_outputs.hpp"
#include "scripting/lua_state.hpp"

namespace luaflow::scripting {

namespace {

// Registry keys: addresses unique to this file.
const char kActionEnvsKey = 0;  // weak-keyed { [action coroutine] = its globals }
const char kProxyMarkerKey = 0; // a field of every read-only proxy's metatable
const char kGlobalsKey = 0;     // the globals table code sees (the sandbox's `_G`)
const char kBaseKey = 0;        // the sandbox under it

void push_registry(lua_State* L, const char* key) {
    lua_pushlightuserdata(L, const_cast<char*>(key));
    lua_rawget(L, LUA_REGISTRYINDEX);
}

// The table of globals the running action set, or nil (pushed). Creates it when `create`.
void push_action_env(lua_State* L, bool create) {
    LuaState* state = LuaState::from(L);
    lua_State* co = state ? state->guard().task_thread : nullptr;
    if (!co) {
        lua_pushnil(L);
        return;
    }
    push_registry(L, &kActionEnvsKey);
    lua_pushthread(co);
    lua_xmove(co, L, 1);
    lua_rawget(L, -2);
    if (lua_isnil(L, -1) && create) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushthread(co);
        lua_xmove(co, L, 1);
        lua_pushvalue(L, -2);
        lua_rawset(L, -4);
    }
    lua_remove(L, -2);
}

// The sandbox's __index: a global the base does not hold is the running action's own, if it set one.
int l_read_global(lua_State* L) {
    push_action_env(L, false);
    if (lua_isnil(L, -1)) return 1;
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    return 1;
}

bool base_holds(lua_State* L, int key) {
    push_registry(L, &kBaseKey);
    lua_pushvalue(L, key);
    lua_rawget(L, -2);
    bool held = !lua_isnil(L, -1);
    lua_pop(L, 2);
    return held;
}

// A global write at run time: into the running action's own table. The names the sandbox and the
// workflow file define are read-only: an action that assigned one would change it for every later
// execution (and its concurrent ones).
int set_action_global(lua_State* L, int key, int value) {
    if (base_holds(L, key)) {
        if (lua_type(L, key) == LUA_TSTRING)
            return luaL_error(L,
                              "global '%s' is read-only: the sandbox and the workflow file define it for "
                              "every execution (use a local)",
                              lua_tostring(L, key));
        return luaL_error(L, "this global is read-only: the workflow file defines it (use a local)");
    }
    push_action_env(L, true);
    if (lua_isnil(L, -1)) return luaL_error(L, "cannot set a global outside an action (use a local)");
    lua_pushvalue(L, key);
    lua_pushvalue(L, value);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    return 0;
}

int l_write_global(lua_State* L) {
    return set_action_global(L, 2, 3);
}

int l_read_only(lua_State* L) {
    return luaL_error(L, "%s is read-only (shared by every execution of the workflow)",
                      lua_tostring(L, lua_upvalueindex(1)));
}

// The table a read-only proxy at idx stands for (pushed), or nothing pushed and false.
bool push_proxied(lua_State* L, int idx) {
    if (!lua_istable(L, idx) || !lua_getmetatable(L, idx)) return false;
    lua_pushlightuserdata(L, const_cast<char*>(&kProxyMarkerKey));
    lua_rawget(L, -2);
    bool proxy = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (!proxy) {
        lua_pop(L, 1);
        return false;
    }
    lua_getfield(L, -1, "__index");
    lua_remove(L, -2);
    return true;
}

bool is_globals(lua_State* L, int idx) {
    push_registry(L, &kGlobalsKey);
    bool same = lua_rawequal(L, idx, -1);
    lua_pop(L, 1);
    return same;
}

int l_proxy_next(lua_State* L) {
    lua_settop(L, 2);
    if (lua_next(L, lua_upvalueindex(1))) return 2;
    lua_pushnil(L);
    return 1;
}

// pairs: a read-only proxy lists what it stands for (without handing the table itself out).
int l_pairs(lua_State* L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    materialize_if_lazy(L, 1); // ctx.outputs lists every output
    if (push_proxied(L, 1)) {
        lua_pushcclosure(L, l_proxy_next, 1);
    } else {
        lua_pushvalue(L, lua_upvalueindex(1)); // next
    }
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

// rawset: cannot get around the read-only proxies and the sandbox's globals.
int l_rawset(lua_State* L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checkany(L, 2);
    luaL_checkany(L, 3);
    lua_settop(L, 3);
    if (is_globals(L, 1)) {
        set_action_global(L, 2, 3);
        lua_settop(L, 1);
        return 1;
    }
    if (push_proxied(L, 1)) return luaL_error(L, "rawset: the table is read-only (a library of the sandbox)");
    lua_rawset(L, 1);
    return 1;
}

// rawget of a proxy or of the globals reads what they stand for.
int l_rawget(lua_State* L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checkany(L, 2);
    lua_settop(L, 2);
    if (is_globals(L, 1)) {
        lua_gettable(L, 1);
        return 1;
    }
    if (push_proxied(L, 1)) {
        lua_pushvalue(L, 2);
        lua_rawget(L, -2);
        return 1;
    }
    lua_rawget(L, 1);
    return 1;
}

// Replaces every table-valued field of the table at t (and of the tables in those, once each) with a
// read-only proxy for it.
void make_read_only(lua_State* L, int t, int seen) {
    lua_pushnil(L);
    while (lua_next(L, t)) {
        if (!lua_istable(L, -1) || lua_type(L, -2) != LUA_TSTRING) {
            lua_pop(L, 1);
            continue;
        }
        lua_pushvalue(L, -1);
        lua_rawget(L, seen);
        if (!lua_isnil(L, -1)) { // already a proxy's table: reuse its proxy
            lua_pushvalue(L, -3);
            lua_insert(L, -2);
            lua_rawset(L, t); // t[key] = proxy: only an existing key changes, so lua_next goes on
            lua_pop(L, 1);
            continue;
        }
        lua_pop(L, 1);
        int real = lua_gettop(L);
        lua_newtable(L); // proxy
        lua_pushvalue(L, real);
        lua_pushvalue(L, -2);
        lua_rawset(L, seen);
        lua_createtable(L, 0, 4); // its metatable
        lua_pushvalue(L, real);
        lua_setfield(L, -2, "__index");
        lua_pushvalue(L, -4); // the key: the library's name, for the error
        lua_pushcclosure(L, l_read_only, 1);
        lua_setfield(L, -2, "__newindex");
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
        lua_pushlightuserdata(L, const_cast<char*>(&kProxyMarkerKey));
        lua_pushboolean(L, 1);
        lua_rawset(L, -3);
        lua_setmetatable(L, -2);
        make_read_only(L, real, seen); // kv.global and the like
        lua_pushvalue(L, -3);
        lua_insert(L, -2);
        lua_rawset(L, t);
        lua_pop(L, 1);
    }
}

} // namespace

void install_sandbox_globals(lua_State* L, int base, int globals) {
    lua_pushlightuserdata(L, const_cast<char*>(&kActionEnvsKey));
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
    lua_pushlightuserdata(L, const_cast<char*>(&kGlobalsKey));
    lua_pushvalue(L, globals);
    lua_rawset(L, LUA_REGISTRYINDEX);
    lua_pushlightuserdata(L, const_cast<char*>(&kBaseKey));
    lua_pushvalue(L, base);
    lua_rawset(L, LUA_REGISTRYINDEX);

    lua_pushnil(L);
    lua_setfield(L, base, "_G"); // not a library: set below
    lua_newtable(L);
    int seen = lua_gettop(L);
    make_read_only(L, base, seen);
    lua_pop(L, 1);

    lua_getfield(L, base, "next");
    lua_pushcclosure(L, l_pairs, 1);
    lua_setfield(L, base, "pairs");
    lua_pushcfunction(L, l_rawset);
    lua_setfield(L, base, "rawset");
    lua_pushcfunction(L, l_rawget);
    lua_setfield(L, base, "rawget");

    // While the file loads, its globals go into `globals` (its definitions); the sandbox shows through.
    lua_createtable(L, 0, 3);
    lua_pushvalue(L, base);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, "the sandbox's globals");
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, globals);
    lua_pushvalue(L, globals);
    lua_setfield(L, base, "_G");
}

void drop_action_globals(lua_State* L, lua_State* co) {
    push_registry(L, &kActionEnvsKey);
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    lua_pushthread(co);
    lua_xmove(co, L, 1);
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

void seal_globals(lua_State* L) {
    push_registry(L, &kGlobalsKey);
    int globals = lua_gettop(L);
    push_registry(L, &kBaseKey);
    int base = lua_gettop(L);
    // The file's own globals join the read-only base; `globals` stays empty, so that every write
    // reaches __newindex.
    lua_pushnil(L);
    while (lua_next(L, globals)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, base);
    }
    for (;;) {
        lua_pushnil(L);
        if (!lua_next(L, globals)) break;
        lua_pop(L, 1);
        lua_pushnil(L);
        lua_rawset(L, globals);
    }
    lua_getmetatable(L, globals);
    lua_pushcfunction(L, l_write_global);
    lua_setfield(L, -2, "__newindex");
    lua_pop(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, l_read_global);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, base);
    lua_pop(L, 2);
}

} // namespace luaflow::scripting
