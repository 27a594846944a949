#pragma once
// A move-only registry reference: it keeps a Lua value alive until the owner drops it
// (lua-nginx-module co_ref, luv luv_handle_t.ref). Debug builds count live refs so tests catch leaks.
#include <atomic>
#include <lua.hpp>
#include <utility>

namespace luaflow::scripting {

class LuaRef {
  public:
    LuaRef() = default;
    // Pops the value on top of L's stack into the registry.
    static LuaRef pop(lua_State* L) {
        LuaRef r;
        r.L_ = L;
        r.ref_ = luaL_ref(L, LUA_REGISTRYINDEX);
        if (r.ref_ != LUA_REFNIL && r.ref_ != LUA_NOREF) live().fetch_add(1, std::memory_order_relaxed);
        return r;
    }
    LuaRef(LuaRef&& o) noexcept : L_(std::exchange(o.L_, nullptr)), ref_(std::exchange(o.ref_, LUA_NOREF)) {}
    LuaRef& operator=(LuaRef&& o) noexcept {
        if (this != &o) {
            reset();
            L_ = std::exchange(o.L_, nullptr);
            ref_ = std::exchange(o.ref_, LUA_NOREF);
        }
        return *this;
    }
    LuaRef(const LuaRef&) = delete;
    LuaRef& operator=(const LuaRef&) = delete;
    ~LuaRef() { reset(); }

    void reset() {
        if (L_ && ref_ != LUA_NOREF && ref_ != LUA_REFNIL) {
            luaL_unref(L_, LUA_REGISTRYINDEX, ref_);
            live().fetch_sub(1, std::memory_order_relaxed);
        }
        L_ = nullptr;
        ref_ = LUA_NOREF;
    }
    bool valid() const { return L_ && ref_ != LUA_NOREF && ref_ != LUA_REFNIL; }
    explicit operator bool() const { return valid(); }
    // Pushes the value onto L (any thread of the same state).
    void push(lua_State* L) const {
        if (valid())
            lua_rawgeti(L, LUA_REGISTRYINDEX, ref_);
        else
            lua_pushnil(L);
    }
    int id() const { return ref_; }

    // Number of live refs in the process; tests compare it before and after.
    static long live_count() { return live().load(std::memory_order_relaxed); }

  private:
    static std::atomic<long>& live() {
        static std::atomic<long> n{0};
        return n;
    }
    lua_State* L_ = nullptr;
    int ref_ = LUA_NOREF;
};

} // namespace luaflow::scripting
