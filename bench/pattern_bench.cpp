// The sandbox's string.find/match/gmatch/gsub (scripting/bounded_pattern: a matcher with a work budget,
// issue 14) against their physical limit, LuaJIT's own C matcher, in the same run: each call N times in
// a Lua loop, JIT off in both (the sandbox's loop is interpreted, so is the bare one), best of 3.
//   pattern_bench [N]     prints: call, LuaJIT ms, ours ms, ours / LuaJIT
#include "scripting/lua_state.hpp"

#include <lua.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

using luaflow::scripting::LuaState;
using luaflow::scripting::SandboxOptions;

namespace {

struct Case {
    const char* name;
    const char* body; // one call, on the local `s`
};

constexpr Case kCases[] = {
    {"match (%w+)=(%w+)", "local a, b = s:match('(%w+)=(%w+)')"},
    {"plain find", "local i = s:find('value', 1, true)"},
    {"find 'val'", "local i = s:find('val')"},
    {"trim ^%s*(.-)%s*$", "local t = s:match('^%s*(.-)%s*$')"},
    {"gsub %s+", "local t = s:gsub('%s+', ' ')"},
    {"gsub ,", "local t = s:gsub(',', ';')"},
    {"gmatch step", "for w in s:gmatch('%a+') do break end"},
};

std::string loop_code(const Case& c, long n) {
    return "local s = '  key=value, other=thing , more  '\nfor _ = 1, " + std::to_string(n) + " do " +
           c.body + " end";
}

// Best of 3 runs of the loop, in ms; negative when it failed (the message is printed).
double best_ms(lua_State* L, const std::string& code, const char* who) {
    double best = 1e300;
    for (int run = 0; run < 3; ++run) {
        if (luaL_loadbuffer(L, code.data(), code.size(), "=bench") != 0) {
            std::fprintf(stderr, "%s: %s\n", who, lua_tostring(L, -1));
            lua_pop(L, 1);
            return -1;
        }
        auto t0 = std::chrono::steady_clock::now();
        if (lua_pcall(L, 0, 0, 0) != 0) {
            std::fprintf(stderr, "%s: %s\n", who, lua_tostring(L, -1));
            lua_pop(L, 1);
            return -1;
        }
        best = std::min(
            best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
}

} // namespace

int main(int argc, char** argv) {
    const long n = argc > 1 ? std::atol(argv[1]) : 1'000'000;
    lua_State* bare = luaL_newstate();
    luaL_openlibs(bare);
    luaJIT_setmode(bare, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
    SandboxOptions options;
    options.memory_limit = 64u << 20;
    auto sandbox = LuaState::create(options);
    if (!sandbox) {
        std::fprintf(stderr, "sandbox: %s\n", sandbox.error().message.c_str());
        return 1;
    }
    LuaState& state = **sandbox;
    luaJIT_setmode(state.L(), 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
    std::printf("%-22s %12s %12s %8s   (%ld calls each, best of 3)\n", "call", "LuaJIT ms", "ours ms",
                "ratio", n);
    int failed = 0;
    for (const Case& c : kCases) {
        const std::string code = loop_code(c, n);
        const double limit = best_ms(bare, code, "LuaJIT");
        // The sandbox's own loader: the code runs with the sandbox's globals, as an action's does.
        double ours = -1;
        for (int run = 0; run < 3; ++run) {
            if (auto loaded = state.load(code, "=bench"); !loaded) {
                std::fprintf(stderr, "ours: %s\n", loaded.error().message.c_str());
                break;
            }
            auto t0 = std::chrono::steady_clock::now();
            if (lua_pcall(state.L(), 0, 0, 0) != 0) {
                std::fprintf(stderr, "ours: %s\n", lua_tostring(state.L(), -1));
                lua_pop(state.L(), 1);
                break;
            }
            const double ms =
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
            ours = ours < 0 ? ms : std::min(ours, ms);
        }
        if (limit < 0 || ours < 0) {
            ++failed;
            continue;
        }
        std::printf("%-22s %12.1f %12.1f %7.2fx\n", c.name, limit, ours, ours / limit);
    }
    lua_close(bare);
    return failed == 0 ? 0 : 1;
}
