#include "scripting/bounded_pattern.hpp"

#include "scripting/lua_state.hpp"
#include "scripting/pattern_matcher.hpp"

#include <cstring>

namespace luaflow::scripting {

namespace {

// How deep gsub replacements nest on this thread. The C stack is the thread's, so the count is too;
// NestedCallback's destructor runs when a Lua error unwinds through it (LuaJIT on x86-64 raises errors
// with the C++ unwinder), so an error at any depth leaves the count right.
thread_local int nested_callbacks = 0;

class NestedCallback {
  public:
    explicit NestedCallback(lua_State* L) {
        if (nested_callbacks >= kMaxNestedCallbacks)
            luaL_error(L, "string.gsub: callbacks nested too deep (%d)", kMaxNestedCallbacks);
        ++nested_callbacks;
    }
    ~NestedCallback() { --nested_callbacks; }
    NestedCallback(const NestedCallback&) = delete;
    NestedCallback& operator=(const NestedCallback&) = delete;
};

// A pattern without these characters is found by a plain search, as in Lua 5.1.
bool has_specials(const char* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        switch (p[i]) {
        case '^':
        case '$':
        case '*':
        case '+':
        case '?':
        case '.':
        case '(':
        case '[':
        case '%':
        case '-':
            return true;
        default:
            break;
        }
    }
    return false;
}

// Needles up to this long are searched for naively (memchr, then memcmp), which costs at most this many
// comparisons per byte of the subject: fastest for the short needles of most finds.
constexpr std::size_t kNaiveNeedleMax = 32;

// Where needle first occurs in haystack, or nullptr; in time linear in the haystack's length.
const char* find_plain(const char* haystack, std::size_t n, const char* needle, std::size_t m) {
    if (m > kNaiveNeedleMax) {
        // glibc's memmem is linear (two-way), where a naive search, LuaJIT's included, is O(n * m).
        return static_cast<const char*>(memmem(haystack, n, needle, m));
    }
    if (m == 0) return haystack;
    if (m > n) return nullptr;
    const char* last = haystack + (n - m); // the last place the needle can start
    for (const char* q = haystack; q <= last; ++q) {
        q = static_cast<const char*>(std::memchr(q, needle[0], static_cast<std::size_t>(last - q) + 1));
        if (!q) return nullptr;
        if (std::memcmp(q + 1, needle + 1, m - 1) == 0) return q;
    }
    return nullptr;
}

// find's and match's `init` as an offset: 1-based, negative counts from the end, clamped to the subject
// (Lua 5.1: an init past the end searches at the end).
std::size_t start_offset(lua_Integer init, std::size_t len) {
    auto n = static_cast<lua_Integer>(len);
    if (init < 0)
        init = init + n < 0 ? 0 : init + n;
    else if (init > 0)
        init -= 1;
    return init > n ? len : static_cast<std::size_t>(init);
}

int find_or_match(lua_State* L, bool find, const char* where) {
    std::size_t ls = 0;
    std::size_t lp = 0;
    const char* s = luaL_checklstring(L, 1, &ls);
    const char* p = luaL_checklstring(L, 2, &lp);
    int top = lua_gettop(L); // fewer API calls: a find costs a few of them more than LuaJIT's own
    std::size_t start = top >= 3 ? start_offset(luaL_optinteger(L, 3, 1), ls) : 0;
    if (find && ((top >= 4 && lua_toboolean(L, 4)) || !has_specials(p, lp))) {
        if (const char* q = find_plain(s + start, ls - start, p, lp)) {
            auto at = static_cast<lua_Integer>(q - s);
            lua_pushinteger(L, at + 1);
            lua_pushinteger(L, at + static_cast<lua_Integer>(lp));
            return 2;
        }
        lua_pushnil(L);
        return 1;
    }
    PatternMatcher matcher(L, where, s, ls, p, lp);
    bool anchor = lp > 0 && *p == '^';
    const char* pattern = anchor ? p + 1 : p;
    const char* from = s + start;
    do {
        if (const char* e = matcher.match_from(from, pattern)) {
            if (!find) return matcher.push_captures(from, e, true);
            lua_pushinteger(L, from - s + 1);
            lua_pushinteger(L, e - s);
            return matcher.push_captures(nullptr, nullptr, false) + 2;
        }
    } while (from++ < matcher.subject_end() && !anchor);
    lua_pushnil(L);
    return 1;
}

int bounded_find(lua_State* L) {
    return find_or_match(L, true, "string.find");
}

int bounded_match(lua_State* L) {
    return find_or_match(L, false, "string.match");
}

// gmatch's iterator; upvalues: the subject, the pattern, and the offset to go on from.
int gmatch_next(lua_State* L) {
    std::size_t ls = 0;
    std::size_t lp = 0;
    const char* s = lua_tolstring(L, lua_upvalueindex(1), &ls);
    const char* p = lua_tolstring(L, lua_upvalueindex(2), &lp);
    auto start = static_cast<std::size_t>(lua_tointeger(L, lua_upvalueindex(3)));
    if (start > ls) return 0;
    PatternMatcher matcher(L, "string.gmatch", s, ls, p, lp);
    // '^' anchors nothing in gmatch (Lua 5.1): it is an ordinary character here.
    for (const char* from = s + start; from <= s + ls; ++from) {
        if (const char* e = matcher.match_from(from, p)) {
            // After an empty match the next search starts one further, so the loop ends.
            lua_pushinteger(L, static_cast<lua_Integer>(e - s) + (e == from ? 1 : 0));
            lua_replace(L, lua_upvalueindex(3));
            return matcher.push_captures(from, e, true);
        }
    }
    lua_pushinteger(L, static_cast<lua_Integer>(ls) + 1);
    lua_replace(L, lua_upvalueindex(3));
    return 0;
}

int bounded_gmatch(lua_State* L) {
    luaL_checkstring(L, 1);
    luaL_checkstring(L, 2);
    lua_settop(L, 2);
    lua_pushinteger(L, 0);
    lua_pushcclosure(L, gmatch_next, 3);
    return 1;
}

// A string replacement: %0 is the whole match, %1-%9 captures, '%' before anything else that character.
void add_replacement_text(PatternMatcher& matcher, luaL_Buffer* b, const char* s, const char* e) {
    lua_State* L = b->L;
    std::size_t len = 0;
    const char* r = lua_tolstring(L, 3, &len);
    const char* end = r + len;
    matcher.spend(1 + static_cast<std::ptrdiff_t>(len / 16));
    while (r < end) {
        const auto* escape = static_cast<const char*>(std::memchr(r, '%', static_cast<std::size_t>(end - r)));
        if (!escape) {
            luaL_addlstring(b, r, static_cast<std::size_t>(end - r));
            return;
        }
        luaL_addlstring(b, r, static_cast<std::size_t>(escape - r));
        // A '%' that ends the replacement adds a NUL: Lua 5.1 and LuaJIT read the string's terminator.
        char c = escape + 1 < end ? escape[1] : '\0';
        r = escape + 2;
        if (c < '0' || c > '9') {
            luaL_addchar(b, c);
        } else if (c == '0') {
            luaL_addlstring(b, s, static_cast<std::size_t>(e - s));
        } else {
            matcher.push_capture(c - '1', s, e);
            luaL_addvalue(b);
        }
    }
}

// Adds the replacement of the match [s, e) to b: from the string, the function or the table at index 3.
void add_replacement(PatternMatcher& matcher, luaL_Buffer* b, const char* s, const char* e) {
    lua_State* L = b->L;
    switch (lua_type(L, 3)) {
    case LUA_TFUNCTION: {
        NestedCallback nested(L);
        lua_pushvalue(L, 3);
        int n = matcher.push_captures(s, e, true);
        lua_call(L, n, 1);
        break;
    }
    case LUA_TTABLE: {
        NestedCallback nested(L); // an __index function is a callback too
        matcher.push_capture(0, s, e);
        lua_gettable(L, 3);
        break;
    }
    default:
        add_replacement_text(matcher, b, s, e);
        return;
    }
    // Lua code ran, which no step counts: charge its time now.
    check_unpaused(L, "string.gsub");
    if (!lua_toboolean(L, -1)) {
        lua_pop(L, 1);
        lua_pushlstring(L, s, static_cast<std::size_t>(e - s)); // nil or false keeps the match
    } else if (!lua_isstring(L, -1)) {
        luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
    }
    luaL_addvalue(b);
}

int bounded_gsub(lua_State* L) {
    std::size_t ls = 0;
    std::size_t lp = 0;
    const char* src = luaL_checklstring(L, 1, &ls);
    const char* p = luaL_checklstring(L, 2, &lp);
    int replacement = lua_type(L, 3);
    lua_Integer max_n = luaL_optinteger(L, 4, static_cast<lua_Integer>(ls) + 1);
    luaL_argcheck(L,
                  replacement == LUA_TNUMBER || replacement == LUA_TSTRING || replacement == LUA_TFUNCTION ||
                      replacement == LUA_TTABLE,
                  3, "string/function/table expected");
    PatternMatcher matcher(L, "string.gsub", src, ls, p, lp);
    bool anchor = lp > 0 && *p == '^';
    const char* pattern = anchor ? p + 1 : p;
    const char* end = src + ls;
    // The result grows in Lua strings, under the state's memory cap.
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    lua_Integer n = 0;
    while (n < max_n) {
        const char* e = matcher.match_from(src, pattern);
        if (e) {
            ++n;
            add_replacement(matcher, &b, src, e);
        }
        if (e && e > src)
            src = e;
        else if (src < end)
            luaL_addchar(&b, *src++);
        else
            break;
        if (anchor) break;
    }
    luaL_addlstring(&b, src, static_cast<std::size_t>(end - src));
    luaL_pushresult(&b);
    lua_pushinteger(L, n);
    return 2;
}

} // namespace

void install_bounded_patterns(lua_State* L, int string_table) {
    if (string_table < 0 && string_table > LUA_REGISTRYINDEX) string_table = lua_gettop(L) + string_table + 1;
    lua_pushcfunction(L, bounded_find);
    lua_setfield(L, string_table, "find");
    lua_pushcfunction(L, bounded_match);
    lua_setfield(L, string_table, "match");
    lua_pushcfunction(L, bounded_gsub);
    lua_setfield(L, string_table, "gsub");
    lua_pushcfunction(L, bounded_gmatch);
    lua_getfield(L, string_table, "gfind"); // Lua 5.0's name, when the build keeps it
    if (!lua_isnil(L, -1)) {
        lua_pushvalue(L, -2);
        lua_setfield(L, string_table, "gfind");
    }
    lua_pop(L, 1);
    lua_setfield(L, string_table, "gmatch");
}

} // namespace luaflow::scripting
