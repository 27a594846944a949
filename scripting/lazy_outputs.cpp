#include "scripting/lazy_outputs.hpp"

#include "scripting/convert.hpp"

#include <new>

namespace luaflow::scripting {

namespace {

const char kViewMetaKey = 0; // registry: the metatable the userdata holding a snapshot carries

struct Snapshot {
    std::shared_ptr<const OutputsLog> outputs;
    std::size_t seen = 0;  // the entries finished when the attempt started
    bool complete = false; // every output converted
};

int l_snapshot_gc(lua_State* L) {
    static_cast<Snapshot*>(lua_touserdata(L, 1))->~Snapshot();
    return 0;
}

Snapshot* snapshot_of_view(lua_State* L, int view) {
    if (!lua_getmetatable(L, view)) return nullptr;
    lua_pushlightuserdata(L, const_cast<char*>(&kViewMetaKey));
    lua_rawget(L, -2);
    auto* snap = lua_isuserdata(L, -1) ? static_cast<Snapshot*>(lua_touserdata(L, -1)) : nullptr;
    lua_pop(L, 2);
    return snap;
}

// __index(view, name): the output of `name`, converted now and kept in the view.
int l_view_index(lua_State* L) {
    auto* snap = static_cast<Snapshot*>(lua_touserdata(L, lua_upvalueindex(1)));
    if (lua_type(L, 2) != LUA_TSTRING || !snap->outputs) return 0;
    size_t n = 0;
    const char* name = lua_tolstring(L, 2, &n);
    const nlohmann::json* output = snap->outputs->find(std::string_view(name, n), snap->seen);
    if (!output || output->is_null()) return 0;
    push_json(L, *output);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, -2);
    lua_rawset(L, 1);
    return 1;
}

} // namespace

void push_lazy_outputs(lua_State* L, std::shared_ptr<const OutputsLog> outputs, std::size_t seen) {
    lua_newtable(L);
    lua_createtable(L, 0, 2); // the view's metatable
    auto* snap = static_cast<Snapshot*>(lua_newuserdata(L, sizeof(Snapshot)));
    new (snap) Snapshot{std::move(outputs), seen, false};
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, l_snapshot_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_pushlightuserdata(L, const_cast<char*>(&kViewMetaKey));
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);
    lua_pushcclosure(L, l_view_index, 1);
    lua_setfield(L, -2, "__index");
    // Out of the action's reach: the snapshot's userdata must not be moved under another table.
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
}

std::optional<nlohmann::json> lazy_outputs_unread(lua_State* L, int idx) {
    if (idx < 0 && idx > LUA_REGISTRYINDEX) idx = lua_gettop(L) + idx + 1;
    Snapshot* snap = lua_istable(L, idx) ? snapshot_of_view(L, idx) : nullptr;
    if (!snap || snap->complete || !snap->outputs) return std::nullopt;
    return snap->outputs->object(snap->seen);
}

void materialize_if_lazy(lua_State* L, int idx) {
    if (idx < 0 && idx > LUA_REGISTRYINDEX) idx = lua_gettop(L) + idx + 1;
    if (!lua_istable(L, idx)) return;
    Snapshot* snap = snapshot_of_view(L, idx);
    if (!snap || snap->complete || !snap->outputs) return;
    nlohmann::json all = snap->outputs->object(snap->seen);
    for (auto it = all.begin(); it != all.end(); ++it) {
        if (it->is_null()) continue;
        lua_pushlstring(L, it.key().data(), it.key().size());
        lua_rawget(L, idx);
        bool present = !lua_isnil(L, -1);
        lua_pop(L, 1);
        if (present) continue; // converted already, and maybe changed by the action: keep it
        lua_pushlstring(L, it.key().data(), it.key().size());
        push_json(L, *it);
        lua_rawset(L, idx);
    }
    snap->complete = true;
}

} // namespace luaflow::scripting
