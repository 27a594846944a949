#include "common/json_parse.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace luaflow;

TEST_CASE("issue 14: JSON nested past 128 levels is refused as it is parsed, not built") {
    std::string deep = std::string(66000, '[') + std::string(66000, ']');
    auto r = parse_json_bounded(deep);
    REQUIRE_FALSE(r);
    CHECK(r.error().message == "nested deeper than 128 levels");
    std::string objects;
    for (int i = 0; i < 129; ++i)
        objects += "{\"k\":";
    objects += "1" + std::string(129, '}');
    CHECK_FALSE(parse_json_bounded(objects));
}

TEST_CASE("JSON up to 128 levels parses whole; syntax errors name the offset") {
    auto r = parse_json_bounded(std::string(128, '[') + "7" + std::string(128, ']'));
    REQUIRE(r);
    const nlohmann::json* v = &*r;
    for (int i = 0; i < 128; ++i)
        v = &(*v)[0];
    CHECK(*v == 7);
    auto bad = parse_json_bounded("{\"a\": tru}");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().message.find("parse error at line 1, column") != std::string::npos);
}

TEST_CASE("a number too large for a double is an error, not an exception (found by the HTTP test)") {
    for (const char* text : {"1e999", "[1, -1e999]", "{\"limit\": 1e400}"}) {
        auto r = parse_json_bounded(text);
        REQUIRE_FALSE(r);
        CHECK(r.error().message.find("number overflow") != std::string::npos);
    }
}
