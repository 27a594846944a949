// JSON <-> Lua (scripting/convert.cpp), both ways, and the stdlib's json.decode/json.encode over it. The
// input is taken as JSON text and, when it compiles, as Lua code returning a value. What must hold:
// every conversion returns a value or an error (never a crash, whatever the nesting or the metatables),
// and a converted value is a fixed point: Lua -> JSON -> Lua -> JSON gives the same JSON, and so does
// json.encode(json.decode(t)) for a t that json.encode made.
#include "scripting/convert.hpp"
#include "scripting/lua_state.hpp"
#include "stdlib/stdlib.hpp"
#include "tests/fuzz/fuzz_support.hpp"

#include <cstdint>
#include <memory>
#include <string>

namespace {

using namespace luaflow;
using nlohmann::json;

constexpr std::uint64_t kRunNs = 1'000'000'000; // runaway Lua in the input stops after this
constexpr const char* kNotFixed = "json round trip is not a fixed point";

// The stdlib's own path, as an action would use it: decode, encode, and once more.
const char* const kStdlibRoundTrip = R"(
local text = ...
local ok, value = pcall(json.decode, text)
if not ok then return end
local encoded_ok, encoded = pcall(json.encode, value)
if not encoded_ok then return end
local again = json.encode(json.decode(encoded))
if again ~= encoded then error("NOT-FIXED " .. encoded .. " then " .. again, 0) end
)";

std::unique_ptr<scripting::LuaState> fresh_state() {
    scripting::SandboxOptions o;
    o.memory_limit = 16u << 20;
    o.install_globals = [](lua_State* L, int env) { stdlib::install_json(L, env); };
    auto created = scripting::LuaState::create(o);
    if (!created) fuzz::violated("cannot create a Lua state: " + created.error().message);
    return std::move(created.value());
}

// to_json of the value at the top, then push_json of that and to_json again: both must agree.
void round_trip_top(lua_State* L) {
    auto first = scripting::to_json(L, -1, "value");
    if (!first) return; // functions, cycles, depth: an error value is the answer
    scripting::push_json(L, *first);
    auto second = scripting::to_json(L, -1, "value");
    if (!second)
        fuzz::violated(std::string(kNotFixed) + ": " + first->dump() +
                       " does not convert back: " + second.error().message);
    if (*second != *first)
        fuzz::violated(std::string(kNotFixed) + ": " + first->dump() + " then " + second->dump());
    lua_pop(L, 1);
}

void run_guarded(scripting::LuaState& state, const std::function<void(lua_State*)>& fn) {
    std::uint64_t now = uv_hrtime();
    state.guard().deadline_ns = now + kRunNs;
    state.guard().unpaused_since_ns = now;
    auto ran = scripting::protected_call(state.L(), fn);
    state.guard().deadline_ns = 0;
    state.guard().unpaused_since_ns = 0;
    if (!ran && ran.error().message.find("NOT-FIXED") != std::string::npos)
        fuzz::violated(std::string(kNotFixed) + " (stdlib json): " + ran.error().message);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static bool quiet = (fuzz::quiet_process(), true);
    (void)quiet;
    std::string text(reinterpret_cast<const char*>(data), size);
    auto state = fresh_state(); // a fresh sandbox each time: the input may set globals
    // JSON text -> Lua -> JSON, in C++ (what ctx.input, kv and outputs go through).
    json j = json::parse(text, nullptr, false);
    if (!j.is_discarded())
        run_guarded(*state, [&](lua_State* L) {
            scripting::push_json(L, j);
            round_trip_top(L);
        });
    // The same text through json.decode / json.encode.
    if (state->load(kStdlibRoundTrip, "=roundtrip")) {
        scripting::LuaRef fn = scripting::LuaRef::pop(state->L());
        run_guarded(*state, [&](lua_State* L) {
            fn.push(L);
            lua_pushlstring(L, text.data(), text.size());
            lua_call(L, 1, 0);
        });
    }
    // Lua code returning a value (tables with metatables, cycles, functions) -> JSON -> Lua -> JSON.
    if (state->load(text, "=input")) {
        scripting::LuaRef fn = scripting::LuaRef::pop(state->L());
        run_guarded(*state, [&](lua_State* L) {
            fn.push(L);
            lua_call(L, 0, 1);
            round_trip_top(L);
        });
    }
    return 0;
}
