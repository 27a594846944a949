#include "scripting/convert.hpp"
#include "scripting/lua_state.hpp"

#include <doctest/doctest.h>

using namespace luaflow;
using namespace luaflow::scripting;
using nlohmann::json;

namespace {

struct State {
    std::unique_ptr<LuaState> s = std::move(LuaState::create(SandboxOptions{}).value());
    // Evaluates `return <expr>` and converts the result.
    Result<json> convert(const std::string& expr) {
        REQUIRE(s->load("return " + expr, "=c"));
        REQUIRE(lua_pcall(s->L(), 0, 1, 0) == 0);
        auto r = to_json(s->L(), -1, "output");
        lua_pop(s->L(), 1);
        return r;
    }
    // Pushes the JSON, then converts it back.
    json round_trip(const json& j) {
        push_json(s->L(), j);
        auto r = to_json(s->L(), -1, "v");
        lua_pop(s->L(), 1);
        return r.value();
    }
};

} // namespace

TEST_CASE("Lua values become JSON") {
    State st;
    CHECK(st.convert("{ low = { 'a', 'b' }, n = 3, ok = true, r = 1.5 }").value() ==
          json{{"low", {"a", "b"}}, {"n", 3}, {"ok", true}, {"r", 1.5}});
    CHECK(st.convert("nil").value().is_null());
    CHECK(st.convert("{}").value() == json::array());
    CHECK(st.convert("{ [1] = 'a', [3] = 'c' }").value() == json{{"1", "a"}, {"3", "c"}});
    CHECK(st.convert("2^53 + 10").value().is_number_float());
}

TEST_CASE("what JSON cannot hold is an error naming its path") {
    State st;
    CHECK(st.convert("{ items = { 1, 2, function() end } }").error().message ==
          "output.items[3]: cannot encode a function");
    CHECK(st.convert("{ ['odd key'] = { x = 0/0 } }").error().message ==
          "output[\"odd key\"].x: cannot encode NaN");
    CHECK(st.convert("{ [true] = 1 }").error().message ==
          "output: cannot encode a table key of type boolean");
    CHECK(st.convert("(function() local t = {} t.self = t return t end)()")
              .error()
              .message.find("nested deeper than 128 levels (a cycle?)") != std::string::npos);
    CHECK(st.convert("coroutine.create(function() end)").error().message == "output: cannot encode a thread");
}

TEST_CASE("JSON round-trips through Lua, empty objects and arrays included") {
    State st;
    json doc = {{"a", json::object()}, {"b", json::array()}, {"c", {1, 2, {{"d", nullptr}}}}, {"e", "x"}};
    json back = st.round_trip(doc);
    CHECK(back["a"] == json::object());
    CHECK(back["b"] == json::array());
    CHECK(back["c"][2] == json::object()); // a null member is absent in Lua
    CHECK(back["e"] == "x");
}

TEST_CASE("a string that is not UTF-8 is an error naming its path, not a crash later") {
    State st;
    CHECK(st.convert("{ s = 'h\\195\\169llo \\226\\130\\172 \\240\\159\\152\\128' }").value()["s"] ==
          "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80");
    auto bad = st.convert("{ list = { 'ok', 'a\\255b' } }");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().message ==
          "output.list[2]: the string is not UTF-8 text (byte 0xFF at offset 1); binary "
          "data must be encoded first, e.g. as hex or base64");
    CHECK_FALSE(st.convert("'\\192\\128'"));           // overlong
    CHECK_FALSE(st.convert("'\\237\\160\\128'"));      // a surrogate
    CHECK_FALSE(st.convert("'\\244\\144\\128\\128'")); // past U+10FFFF
    CHECK_FALSE(st.convert("'\\226\\130'"));           // cut short
    auto key = st.convert("{ ['k\\255'] = 1 }");
    REQUIRE_FALSE(key);
    CHECK(key.error().message.find("output (a key): the string is not UTF-8") == 0);
}
