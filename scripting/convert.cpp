#include "scripting/convert.hpp"

#include "common/protocol.hpp"
#include "common/utf8.hpp"
#include "scripting/lazy_outputs.hpp"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

namespace luaflow::scripting {

using nlohmann::json;

namespace {

// Lua tables converted to JSON: SPEC 3's bound on nesting.
constexpr int kMaxDepth = static_cast<int>(protocol::kMaxJsonDepth);
const char kObjectMarker = 0;
const char kArrayMarker = 0;

bool is_identifier(const std::string& s) {
    if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
    for (char c : s)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
    return true;
}

std::string key_path(const std::string& path, const std::string& key) {
    if (is_identifier(key)) return path + "." + key;
    return path + "[" + json(key).dump() + "]";
}

// 1 when the table at idx carries `marker` as its metatable.
bool has_marker(lua_State* L, int idx, const char* marker) {
    if (!lua_getmetatable(L, idx)) return false;
    lua_pushlightuserdata(L, const_cast<char*>(marker));
    lua_rawget(L, LUA_REGISTRYINDEX);
    bool same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same;
}

json number_json(double d) {
    if (std::floor(d) == d && std::fabs(d) < 9007199254740992.0) return static_cast<std::int64_t>(d);
    return d;
}

std::string utf8_problem(const std::string& path, const char* s, std::size_t n, std::size_t at) {
    return path + ": the string is not UTF-8 text (" + describe_invalid_utf8(std::string_view(s, n), at) +
           "); binary data must be encoded first, e.g. as hex or base64";
}

struct Converter {
    lua_State* L;
    std::string error;

    bool convert(int idx, const std::string& path, int depth, json& out) {
        switch (lua_type(L, idx)) {
        case LUA_TNIL:
            out = nullptr;
            return true;
        case LUA_TBOOLEAN:
            out = lua_toboolean(L, idx) != 0;
            return true;
        case LUA_TNUMBER: {
            double d = lua_tonumber(L, idx);
            if (!std::isfinite(d))
                return fail(path + ": cannot encode " + (std::isnan(d) ? "NaN" : "an infinite number"));
            out = number_json(d);
            return true;
        }
        case LUA_TSTRING: {
            size_t n = 0;
            const char* s = lua_tolstring(L, idx, &n);
            if (std::size_t at = invalid_utf8_at(std::string_view(s, n)); at != std::string::npos)
                return fail(utf8_problem(path, s, n, at));
            out = std::string(s, n);
            return true;
        }
        case LUA_TTABLE:
            return table(idx, path, depth, out);
        case LUA_TLIGHTUSERDATA:
            if (lua_touserdata(L, idx) == nullptr) { // json.null-style sentinels
                out = nullptr;
                return true;
            }
            [[fallthrough]];
        default:
            return fail(path + ": cannot encode a " + luaL_typename(L, idx));
        }
    }

    bool fail(std::string msg) {
        error = std::move(msg);
        return false;
    }

    bool table(int idx, const std::string& path, int depth, json& out) {
        if (depth >= kMaxDepth)
            return fail(path + ": nested deeper than " + std::to_string(kMaxDepth) + " levels (a cycle?)");
        if (idx < 0) idx = lua_gettop(L) + idx + 1;
        lua_checkstack(L, 4);
        // Count the keys and see whether they are exactly 1..n.
        size_t count = 0;
        double max_index = 0;
        bool all_positive_ints = true;
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            ++count;
            if (lua_type(L, -2) == LUA_TNUMBER) {
                double k = lua_tonumber(L, -2);
                if (k >= 1 && std::floor(k) == k)
                    max_index = std::max(max_index, k);
                else
                    all_positive_ints = false;
            } else {
                all_positive_ints = false;
            }
            lua_pop(L, 1);
        }
        // ctx.outputs: what the action has not read is still JSON in the snapshot it shares.
        std::optional<json> unread = lazy_outputs_unread(L, idx);
        bool view = unread.has_value();
        if (count == 0 && !view) {
            out = has_marker(L, idx, &kObjectMarker) ? json::object() : json::array();
            return true;
        }
        if (!view && all_positive_ints && max_index == static_cast<double>(count)) {
            out = json::array();
            for (size_t i = 1; i <= count; ++i) {
                lua_rawgeti(L, idx, static_cast<int>(i));
                json item;
                bool ok = convert(-1, path + "[" + std::to_string(i) + "]", depth + 1, item);
                lua_pop(L, 1);
                if (!ok) return false;
                out.push_back(std::move(item));
            }
            return true;
        }
        out = json::object();
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            std::string key;
            if (lua_type(L, -2) == LUA_TSTRING) {
                size_t n = 0;
                const char* s = lua_tolstring(L, -2, &n);
                if (std::size_t at = invalid_utf8_at(std::string_view(s, n)); at != std::string::npos) {
                    std::string msg = utf8_problem(path + " (a key)", s, n, at);
                    lua_pop(L, 2);
                    return fail(msg);
                }
                key.assign(s, n);
            } else if (lua_type(L, -2) == LUA_TNUMBER) {
                json k = number_json(lua_tonumber(L, -2));
                key = k.dump();
            } else {
                std::string msg = path + ": cannot encode a table key of type " + luaL_typename(L, -2);
                lua_pop(L, 2);
                return fail(msg);
            }
            json item;
            bool ok = convert(-1, key_path(path, key), depth + 1, item);
            lua_pop(L, 1);
            if (!ok) {
                lua_pop(L, 1);
                return false;
            }
            out[key] = std::move(item);
        }
        if (view)
            for (auto it = unread->begin(); it != unread->end(); ++it)
                if (!it->is_null() && !out.contains(it.key())) out[it.key()] = std::move(*it);
        return true;
    }
};

void push_marker(lua_State* L, const char* marker) {
    lua_pushlightuserdata(L, const_cast<char*>(marker));
    lua_rawget(L, LUA_REGISTRYINDEX);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushstring(L, marker == &kObjectMarker ? "json.object" : "json.array");
        lua_setfield(L, -2, "__name");
        lua_pushlightuserdata(L, const_cast<char*>(marker));
        lua_pushvalue(L, -2);
        lua_rawset(L, LUA_REGISTRYINDEX);
    }
}

} // namespace

Result<json> to_json(lua_State* L, int idx, const std::string& path) {
    if (idx < 0 && idx > LUA_REGISTRYINDEX) idx = lua_gettop(L) + idx + 1;
    Converter c{L, {}};
    json out;
    if (!c.convert(idx, path, 0, out)) return make_error(ErrorCode::invalid, c.error);
    return out;
}

namespace {

void push_json_at(lua_State* L, const json& v, std::size_t depth) {
    // Values from the store and the socket were bounded when they arrived; this holds for any other.
    if (depth >= protocol::kMaxJsonDepth)
        luaL_error(L, "a JSON value nested deeper than %d levels cannot be converted",
                   static_cast<int>(protocol::kMaxJsonDepth));
    if (!lua_checkstack(L, 4)) luaL_error(L, "stack overflow converting a JSON value");
    switch (v.type()) {
    case json::value_t::null:
        lua_pushnil(L);
        return;
    case json::value_t::boolean:
        lua_pushboolean(L, v.get<bool>());
        return;
    case json::value_t::number_integer:
        lua_pushnumber(L, static_cast<double>(v.get<std::int64_t>()));
        return;
    case json::value_t::number_unsigned:
        lua_pushnumber(L, static_cast<double>(v.get<std::uint64_t>()));
        return;
    case json::value_t::number_float:
        lua_pushnumber(L, v.get<double>());
        return;
    case json::value_t::string: {
        const auto& s = v.get_ref<const std::string&>();
        lua_pushlstring(L, s.data(), s.size());
        return;
    }
    case json::value_t::array: {
        lua_createtable(L, static_cast<int>(v.size()), 0);
        if (v.empty()) {
            push_marker(L, &kArrayMarker);
            lua_setmetatable(L, -2);
            return;
        }
        int i = 1;
        for (const auto& item : v) {
            push_json_at(L, item, depth + 1);
            lua_rawseti(L, -2, i++);
        }
        return;
    }
    case json::value_t::object: {
        lua_createtable(L, 0, static_cast<int>(v.size()));
        bool any = false;
        for (auto it = v.begin(); it != v.end(); ++it) {
            if (it.value().is_null()) continue; // nil: the key is absent in Lua
            any = true;
            lua_pushlstring(L, it.key().data(), it.key().size());
            push_json_at(L, it.value(), depth + 1);
            lua_rawset(L, -3);
        }
        if (!any) {
            // Empty in Lua; remember it was an object so it encodes back as {}.
            push_marker(L, &kObjectMarker);
            lua_setmetatable(L, -2);
        }
        return;
    }
    default:
        lua_pushnil(L);
        return;
    }
}

} // namespace

void push_json(lua_State* L, const json& v) {
    push_json_at(L, v, 0);
}

} // namespace luaflow::scripting
