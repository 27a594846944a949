// `cmd` argv templates: splitting "{{ expr }}" out of an argument, the errors that name the argument,
// and the chunk that fills them in the sandbox (values as text, nil refused, literals kept exactly).
#include "scripting/argv_template.hpp"
#include "scripting/convert.hpp"
#include "scripting/lua_state.hpp"

#include <doctest/doctest.h>

using namespace luaflow;
using namespace luaflow::scripting;

namespace {

// Runs the chunk of `argv` with ctx = { input = input } in a fresh sandbox; the list or the error.
Result<nlohmann::json> expand(const std::vector<std::string>& argv, const nlohmann::json& input) {
    auto state = LuaState::create({});
    REQUIRE(state);
    std::vector<std::vector<TemplatePart>> parts;
    for (std::size_t i = 0; i < argv.size(); ++i) {
        auto p = parse_template(argv[i], i);
        if (!p) return p.error();
        parts.push_back(*p);
    }
    lua_State* L = (*state)->L();
    // json.encode is the stdlib's; a stand-in that knows lists of numbers is enough here.
    (*state)->push_env(L);
    REQUIRE((*state)->load("return { encode = function(t) return '[' .. table.concat(t, ',') .. ']' end }",
                           "=json"));
    lua_call(L, 0, 1);
    lua_setfield(L, -2, "json");
    lua_pop(L, 1);
    if (auto r = (*state)->load(argv_chunk(parts), "=cmd"); !r) return r.error();
    lua_createtable(L, 0, 1);
    push_json(L, input);
    lua_setfield(L, -2, "input");
    if (lua_pcall(L, 1, 1, 0) != 0) return make_error(ErrorCode::invalid, lua_tostring(L, -1));
    auto out = to_json(L, -1, "argv");
    lua_pop(L, 1);
    return out;
}

} // namespace

TEST_CASE("argv templates: literal text and expressions, in any number per argument") {
    CHECK_FALSE(has_templates({"echo", "plain"}));
    CHECK(has_templates({"echo", "a{{x}}"}));
    auto parts = parse_template("n={{ input.n }}/{{input.m}}!", 0);
    REQUIRE(parts);
    REQUIRE(parts->size() == 5);
    CHECK((*parts)[0].text == "n=");
    CHECK((*parts)[1].is_expression);
    CHECK((*parts)[1].text == "input.n");
    CHECK((*parts)[3].text == "input.m");
    CHECK((*parts)[4].text == "!");
}

TEST_CASE("argv templates: an unclosed or empty {{ }} names the argument") {
    auto open = parse_template("{{ input.x", 1);
    REQUIRE_FALSE(open);
    CHECK(open.error().message == "cmd[2] \"{{ input.x\": \"{{\" without a closing \"}}\"");
    auto empty = parse_template("a{{  }}b", 0);
    REQUIRE_FALSE(empty);
    CHECK(empty.error().message == "cmd[1] \"a{{  }}b\": an empty {{ }}");
}

TEST_CASE("argv templates: values become text; literals stay exactly as written") {
    auto out = expand({"prog", "{{ input.s }}", "{{ input.i }}", "{{ input.f }}", "{{ input.b }}",
                       "{{ input.t }}", "]] ]=] $HOME \n\"'", "{{ input.s .. '!' }}", "{{ 2^53 }}"},
                      {{"s", "it's"}, {"i", 42}, {"f", 0.25}, {"b", false}, {"t", {1, 2}}});
    REQUIRE_MESSAGE(out, out.error().message);
    CHECK(*out == nlohmann::json{"prog", "it's", "42", "0.25", "false", "[1,2]", "]] ]=] $HOME \n\"'",
                                 "it's!", "9007199254740992"});
}

TEST_CASE("argv templates: a nil value is an error naming the argument and its expression") {
    auto out = expand({"echo", "x{{ input.missing }}"}, nlohmann::json::object());
    REQUIRE_FALSE(out);
    CHECK(out.error().message == "cmd[2]: {{ input.missing }} is nil");
}
