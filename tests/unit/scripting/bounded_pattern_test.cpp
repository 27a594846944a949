// The sandbox's string.find/match/gmatch/gsub (issue 14, items 6 and 8): LuaJIT's results, message for
// message, on a table of tricky cases and on thousands of generated ones; and bounded where LuaJIT's
// are not: a backtracking pattern stops within the unpaused budget or at the deadline, gsub callbacks
// nest at most kMaxNestedCallbacks deep.
#include "scripting/bounded_pattern.hpp"
#include "scripting/lua_state.hpp"

#include <doctest/doctest.h>
#include <luajit.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

using namespace luaflow;
using namespace luaflow::scripting;

namespace {

// diff(name, nargs, ...) calls LuaJIT's original string.<name> and ours with the same arguments and
// returns nil when both give the same values (or the same error message), else both results as text.
// gmatch is compared on everything its iterator returns.
const char* const kDifferentialHarness = R"lua(
local orig, mine = ...
local function pack(...) return { n = select("#", ...), ... } end
local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  return type(v) .. ":" .. tostring(v)
end
local function show_all(r)
  local out = {}
  for i = 1, r.n do out[i] = show(r[i]) end
  return table.concat(out, ", ")
end
local function collect(gmatch, s, p)
  local it = gmatch(s, p)
  local out = {}
  while #out < 100 do
    local r = pack(it())
    if r[1] == nil then break end
    out[#out + 1] = "{" .. show_all(r) .. "}"
  end
  return table.concat(out, " ")
end
local function run(lib, name, args)
  if name == "gmatch" then
    return pack(pcall(function() return collect(lib.gmatch, args[1], args[2]) end))
  end
  local f = lib[name]
  return pack(pcall(function() local r = pack(f(unpack(args, 1, args.n))) return unpack(r, 1, r.n) end))
end
return function(name, ...)
  local args = pack(...)
  local a, b = show_all(run(orig, name, args)), show_all(run(mine, name, args))
  if a == b then return nil end
  local shown = {}
  for i = 1, args.n do shown[i] = show(args[i]) end
  return name .. "(" .. table.concat(shown, ", ") .. "): LuaJIT " .. a .. " | ours " .. b
end
)lua";

// A plain LuaJIT state with both string libraries: `orig` (LuaJIT's functions) and the state's own
// string table with ours installed; the harness function is left in the registry.
class Differential {
  public:
    Differential() {
        L_ = luaL_newstate();
        luaL_openlibs(L_);
        REQUIRE(luaL_loadstring(L_, kDifferentialHarness) == 0);
        lua_newtable(L_); // orig
        lua_getglobal(L_, "string");
        for (const char* name : {"find", "match", "gmatch", "gsub"}) {
            lua_getfield(L_, -1, name);
            lua_setfield(L_, -3, name);
        }
        install_bounded_patterns(L_, lua_gettop(L_));
        REQUIRE(lua_pcall(L_, 2, 1, 0) == 0);
        harness_ = luaL_ref(L_, LUA_REGISTRYINDEX);
    }
    ~Differential() { lua_close(L_); }
    Differential(const Differential&) = delete;
    Differential& operator=(const Differential&) = delete;

    lua_State* L() const { return L_; }

    // Compares one call whose arguments the caller pushed (nargs of them, after the name); "" if equal.
    std::string compare_pushed(const char* name, int nargs) {
        lua_rawgeti(L_, LUA_REGISTRYINDEX, harness_);
        lua_insert(L_, -nargs - 1);
        lua_pushstring(L_, name);
        lua_insert(L_, -nargs - 1);
        ++compared_;
        if (lua_pcall(L_, nargs + 1, 1, 0) != 0) {
            std::string err = lua_tostring(L_, -1);
            lua_pop(L_, 1);
            return "harness error: " + err;
        }
        std::string out = lua_isnil(L_, -1) ? "" : lua_tostring(L_, -1);
        lua_pop(L_, 1);
        return out;
    }

    // Runs Lua code that calls diff(name, ...) for each case and returns the mismatches, one a line.
    std::string compare_cases(const char* cases) {
        std::string code = std::string("local diff = ...\nlocal bad, n = {}, 0\n"
                                       "local function case(...) n = n + 1 local d = diff(...) "
                                       "if d then bad[#bad + 1] = d end end\n") +
                           cases + "\nreturn table.concat(bad, '\\n'), n";
        REQUIRE(luaL_loadstring(L_, code.c_str()) == 0);
        lua_rawgeti(L_, LUA_REGISTRYINDEX, harness_);
        if (lua_pcall(L_, 1, 2, 0) != 0) {
            std::string err = lua_tostring(L_, -1);
            lua_pop(L_, 1);
            return "cases error: " + err;
        }
        compared_ += static_cast<int>(lua_tointeger(L_, -1));
        std::string out = lua_tostring(L_, -2);
        lua_pop(L_, 2);
        return out;
    }

    int compared() const { return compared_; }

  private:
    lua_State* L_ = nullptr;
    int harness_ = LUA_NOREF;
    int compared_ = 0;
};

std::unique_ptr<LuaState> make_state(std::size_t limit = 16u << 20) {
    SandboxOptions o;
    o.memory_limit = limit;
    return std::move(LuaState::create(o).value());
}

// Runs code in the sandbox; returns "ok:<tostring of the result>" or "error:<message>".
std::string eval(LuaState& s, const std::string& code) {
    if (auto r = s.load(code, "=t"); !r) return "compile:" + r.error().message;
    lua_State* L = s.L();
    if (lua_pcall(L, 0, 1, 0) != 0) {
        std::string msg = lua_tostring(L, -1) ? lua_tostring(L, -1) : "?";
        lua_pop(L, 1);
        return "error:" + msg;
    }
    lua_getglobal(L, "tostring");
    lua_insert(L, -2);
    lua_call(L, 1, 1);
    std::string out = std::string("ok:") + lua_tostring(L, -1);
    lua_pop(L, 1);
    return out;
}

double ms_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// The issue's reproduction: exponential backtracking that held LuaJIT's matcher for hours.
const char* const kBacktracking = "(\"a\"):rep(3000):%s((\"a-\"):rep(12) .. \"b\")";

std::string backtracking(const char* fn) {
    char code[128];
    std::snprintf(code, sizeof code, kBacktracking, fn);
    return std::string("return ") + code;
}

} // namespace

TEST_CASE("bounded patterns give LuaJIT's results on tricky cases") {
    Differential d;
    std::string bad = d.compare_cases(R"lua(
local fn = function(...) local t = {} for i = 1, select("#", ...) do t[i] = tostring((select(i, ...))) end
  return "<" .. table.concat(t, ",") .. ">" end
local nofn = function(c) if c == "b" then return false end if c == "c" then return nil end return c .. c end
local tbl = { a = "A", b = 1, hello = "HI", ["("] = false }
local badfn = function() return {} end
for _, f in ipairs({ "find", "match", "gmatch" }) do
  for _, p in ipairs({ "", "^", "$", "^$", "a", "^a", "a$", "^abc$", ".", "..", ".-", ".*", "a*", "a+", "a-",
                       "a?", "^a*", "a-b", "a.-b", "a.*b", "(a)", "(a)(b)", "()", "()a()", "(a*(.)%w(%s*))",
                       "%a+", "%A+", "%d+", "%D", "%l%u", "%L", "%s", "%S+", "%w+", "%W", "%x+", "%X", "%p",
                       "%P", "%c", "%C", "%z", "%Z", "%g", "%G", "%.", "%%", "%]", "[a-c]+", "[^a-c]+", "[%a_]+",
                       "[%d%.]", "[]]", "[^]]", "[a-]", "[-a]", "[a%-z]", "[%]]", "[^%s]+", "%bxy", "%b()",
                       "%b((", "%f[%w]%w+", "%f[%W]", "%f[%a]", "%f[%z]", "%f[^%z]", "%f[a]", "(a)%1",
                       "(%a+)%s*%1", "((a)(b))%2%3", "(.)%1*", "(()a)", "[a-z]-%d", "^(%w+)=(%w+)$",
                       "(%w+)=(%w+)", "b*$", "x*", "%$", "$a", "a$b", "^^", "a^", "(", ")", "(()", "%",
                       "a%", "[a", "[^", "[a%", "%b", "%ba", "%f", "%fa", "%f[a", "%1", "(a)%2", "(a%1)",
                       "%0", "(a)%0", "[%z]", "%zx" }) do
    for _, s in ipairs({ "", "a", "abc", "aaab", "hello world", "key=value", "THE (quick) fox", "x(y(z)w)v",
                         "((a)", "a\0b\0c", "12.5e3 -7", "a]b-c", "tab\there\n", "\200\255abc", "%$^" }) do
      case(f, s, p)
    end
  end
end
for _, init in ipairs({ -100, -4, -3, -1, 0, 1, 2, 3, 4, 5, 100 }) do
  for _, p in ipairs({ "", "a", "b", "^a", "^b", ".", "a$", "()", "(a)" }) do
    case("find", "aba", p, init)
    case("match", "aba", p, init)
    case("find", "aba", p, init, true)
  end
end
case("find", "a.b", ".", 1, true)
case("find", "a+b", "+", 1, true)
case("find", "a+b", "a+", 1, 1)
case("find", "a+b", "a+", 1, false)
case("find", "a\0b", "\0")
case("find", "a\0b", "\0b", 1, true)
case("find", 12345, 34)
case("match", 12345, "%d(%d)")
case("find", "abc", "b", "2")
case("find", "abc", "b", "x")
case("find", nil, "b")
case("find", "abc", {})
case("find", "abc")
case("match", ("a"):rep(300), ("a?"):rep(300))
case("match", ("a"):rep(300), ("(a)"):rep(40))
case("find", "", ("()"):rep(33))
case("match", "abc", ("()"):rep(32))
case("gmatch", "abc", ("()"):rep(33))
for _, s in ipairs({ "", "abc", "hello world", "a,b,,c", "THE (quick) fox", "aaa" }) do
  for _, p in ipairs({ "", "^", "$", "a", "^a", "a*", "a-", ".", "%w+", "(%w+)", "()", "(%w)(%w*)", "%s*",
                       "x*", ",", "(,)", "%b()", "%f[%w]", "^(%w)", "(", "%", "[a" }) do
    for _, r in ipairs({ "", "-", "%0", "<%1>", "%2", "%%", "%a", "x%", "[%0%0]", 7, fn, nofn, tbl, badfn }) do
      case("gsub", s, p, r)
    end
    for _, n in ipairs({ -1, 0, 1, 2 }) do case("gsub", s, p, "#", n) end
  end
end
case("gsub", "abc", "%w", true)
case("gsub", "abc", "%w")
case("gsub", "abc", "%w", "x", "y")
case("gsub", "abc", "(b)", "%2")
case("gsub", "a\0b", "%z", "[%0]")
case("gsub", "hello world", "o", { o = "0" })
case("gsub", ("ab"):rep(50), "(a)(b)", "%2%1", 7)
)lua");
    CHECK_MESSAGE(bad.empty(), bad);
    CHECK(d.compared() > 7000);
}

TEST_CASE("bounded patterns give LuaJIT's results on generated patterns and subjects") {
    Differential d;
    // Tokens of patterns (no NUL: ours reads a NUL in a pattern as a character, LuaJIT as its end).
    static const char* const tokens[] = {
        "a",      "b",     "c",    ".",    "%a",    "%d",   "%s",  "%w",    "%W",   "%p",   "%x",
        "%z",     "%Z",    "[ab]", "[^a]", "[a-c]", "[%a]", "[]]", "[^]]",  "%b()", "%bab", "%f[%w]",
        "%f[%W]", "%f[a]", "(",    ")",    "()",    "%1",   "%2",  "%0",    "*",    "+",    "-",
        "?",      "^",     "$",    "%",    "[",     "]",    "%%",  "%.",    "x",    "1",    " ",
        "[a-",    "%f",    "(a)",  "(.)",  "a*",    "%w+",  ".-",  "[%s%d]"};
    static const std::string letters[] = {"a", "b", "c", "(", ")",   "1", " ", std::string(1, '\0'),
                                          "x", "%", "]", "-", "\xe9"};
    static const char* const replacements[] = {"%0", "<%1>", "x%%y", "%2", "%", "", "%a"};
    std::mt19937 rng(20261206);
    auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
    std::vector<std::string> bad;
    const int cases = 6000;
    for (int i = 0; i < cases; ++i) {
        std::string pattern;
        for (std::size_t n = 1 + pick(6); n > 0; --n)
            pattern += tokens[pick(std::size(tokens))];
        std::string subject;
        for (std::size_t n = pick(11); n > 0; --n) {
            subject += letters[pick(std::size(letters))];
        }
        lua_State* L = d.L();
        lua_pushlstring(L, subject.data(), subject.size());
        lua_pushlstring(L, pattern.data(), pattern.size());
        std::string out;
        switch (pick(4)) {
        case 0:
            lua_pushinteger(L, static_cast<lua_Integer>(pick(25)) - 12);
            out = d.compare_pushed(pick(2) ? "find" : "match", 3);
            break;
        case 1:
            out = d.compare_pushed("gmatch", 2);
            break;
        case 2:
            lua_pushstring(L, replacements[pick(std::size(replacements))]);
            out = d.compare_pushed("gsub", 3);
            break;
        default:
            out = d.compare_pushed(pick(2) ? "find" : "match", 2);
            break;
        }
        if (!out.empty() && bad.size() < 20) bad.push_back(out);
    }
    std::string all;
    for (const auto& b : bad)
        all += b + "\n";
    CHECK_MESSAGE(bad.empty(), all);
    CHECK(d.compared() == cases);
}

TEST_CASE("the sandbox's string functions are the bounded ones") {
    auto s = make_state();
    // A NUL in a pattern is a character to ours; LuaJIT ends the pattern there. The one intended difference.
    CHECK(eval(*s, "return ('a\\0b\\0c'):match('\\0(.)\\0')") == "ok:b");
    CHECK(eval(*s, "return (('a\\0b'):gsub('\\0', '[%0]')) == 'a[\\0]b'") == "ok:true");
    CHECK(eval(*s, "return string.find == ('').find and string.gsub == ('').gsub") == "ok:true");
}

TEST_CASE("issue 14: a backtracking pattern is stopped once it ran 250 ms without a pause point") {
    auto s = make_state();
    for (std::string fn : {"find", "match", "gsub", "gmatch"}) {
        CAPTURE(fn);
        std::string code = backtracking(fn.c_str());
        if (fn == "gsub") code = "return (\"a\"):rep(3000):gsub((\"a-\"):rep(12) .. \"b\", \"\")";
        if (fn == "gmatch") code = "for m in (\"a\"):rep(3000):gmatch((\"a-\"):rep(12) .. \"b\") do end";
        s->guard().unpaused_since_ns = uv_hrtime();
        auto t0 = std::chrono::steady_clock::now();
        std::string r = eval(*s, code);
        double elapsed = ms_since(t0);
        s->guard() = RunGuard{};
        CHECK(r.find("error:") == 0);
        CHECK(r.find("string." + fn + " ran 250 ms without a point to pause at") != std::string::npos);
        CHECK(elapsed >= 240);
        CHECK(elapsed < 600);
        MESSAGE(fn, " stopped after ", elapsed, " ms: ", r);
    }
}

TEST_CASE("issue 14: a backtracking pattern is stopped at the action's deadline") {
    auto s = make_state();
    RunGuard& g = s->guard();
    g.deadline_ns = uv_hrtime() + 100'000'000;
    g.deadline_message = "timed out after 0.1s";
    auto t0 = std::chrono::steady_clock::now();
    std::string r = eval(*s, backtracking("find"));
    double elapsed = ms_since(t0);
    bool hit = g.deadline_hit;
    g = RunGuard{};
    CHECK(r == "error:timed out after 0.1s");
    CHECK(hit);
    CHECK(elapsed < 300);
    // The same state works afterwards, and patterns without a budget set are not stopped.
    CHECK(eval(*s, "return ('key=value'):match('(%w+)=(%w+)')") == "ok:key");
}

TEST_CASE("patterns nested past the recursion cap are too complex, not a C stack overflow") {
    auto s = make_state();
    CHECK(eval(*s, "return ('a'):rep(100000):match(('a?'):rep(100000))").find("pattern too complex") !=
          std::string::npos);
    CHECK(eval(*s, "return ('a'):rep(1000):find(('('):rep(100000))").find("too many captures") !=
          std::string::npos);
    CHECK(eval(*s, "return #('a'):rep(100000):match(('a?'):rep(150))") == "ok:150");
}

TEST_CASE("issue 14: gsub calling itself from its callback is an error, not SIGSEGV") {
    auto s = make_state();
    const char* recursion = "local function g(s) return (s:gsub('.', g)) end return g('abc')";
    for (int round = 0; round < 3; ++round) {
        CAPTURE(round);
        CHECK(eval(*s, recursion) == "error:t:1: string.gsub: callbacks nested too deep (200)");
    }
    // Through a table's __index too.
    CHECK(eval(*s, "local t = {} setmetatable(t, { __index = function(_, k) return (k:gsub('.', t)) end }) "
                   "return ('abc'):gsub('.', t)")
              .find("callbacks nested too deep (200)") != std::string::npos);
    // The count went back to 0 after each error: a nesting just under the cap still works.
    CHECK(eval(*s, "local function h(s, d) if d == 0 then return s end "
                   "return (s:gsub('.', function(c) return h(c, d - 1) end)) end return h('ab', 199)") ==
          "ok:ab");
}

TEST_CASE("gsub builds its result under the state's memory cap") {
    auto s = make_state(4u << 20);
    std::string r = eval(*s, "return #(('x'):rep(1000):gsub('.', ('y'):rep(10000)))");
    CHECK(r.find("not enough memory") != std::string::npos);
    s->clear_memory_exceeded();
    lua_gc(s->L(), LUA_GCCOLLECT, 0);
    CHECK(eval(*s, "return (('x'):rep(100):gsub('x', '%0%0'))") == "ok:" + std::string(200, 'x'));
}

TEST_CASE("plain finds are linear: a needle that almost matches everywhere") {
    auto s = make_state(64u << 20);
    auto t0 = std::chrono::steady_clock::now();
    CHECK(eval(*s, "local h = ('a'):rep(4000000) return h:find(('a'):rep(100000) .. 'b', 1, true)") ==
          "ok:nil");
    // Linear is milliseconds; quadratic would be minutes: the bound only tells the two apart.
    CHECK(ms_since(t0) < 10000);
}
