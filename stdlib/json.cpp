// json.encode(v) / json.decode(s), through scripting/convert (the one place Lua meets JSON).
#include "common/json_parse.hpp"
#include "scripting/convert.hpp"
#include "stdlib/stdlib.hpp"

namespace luaflow::stdlib {

namespace {

int l_json_encode(lua_State* L) {
    luaL_checkany(L, 1);
    auto j = scripting::to_json(L, 1, "value");
    if (!j) return luaL_error(L, "json.encode: %s", j.error().message.c_str());
    std::string text = j->dump();
    lua_pushlstring(L, text.data(), text.size());
    return 1;
}

int l_json_decode(lua_State* L) {
    size_t len = 0;
    const char* s = luaL_checklstring(L, 1, &len);
    // The parser's message names the byte offset of the problem.
    auto j = parse_json_bounded(std::string_view(s, len));
    if (!j) return luaL_error(L, "json.decode: %s", j.error().message.c_str());
    scripting::push_json(L, *j);
    return 1;
}

} // namespace

void install_json(lua_State* L, int env) {
    lua_newtable(L);
    lua_pushcfunction(L, l_json_encode);
    lua_setfield(L, -2, "encode");
    lua_pushcfunction(L, l_json_decode);
    lua_setfield(L, -2, "decode");
    lua_setfield(L, env, "json");
}

} // namespace luaflow::stdlib
