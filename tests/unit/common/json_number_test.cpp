#include "common/json_number.hpp"

#include <doctest/doctest.h>

using namespace luaflow;

TEST_CASE("-i n=0x10 is not the number 16: only JSON's number grammar reads as a number") {
    for (const char* text : {"0x10",   "0X1p4", "inf", "-inf", "Infinity", "nan",   "NAN",  "1e999",
                             "-1e999", " 12",   "12 ", "\t12", "+5",       ".5",    "5.",   "010",
                             "-",      "",      "1e",  "1e+",  "--1",      "1_000", "12abc"})
        CHECK_MESSAGE(!parse_json_number(text), text);
}

TEST_CASE("JSON numbers keep their value, whole ones as integers") {
    CHECK(parse_json_number("0") == nlohmann::json(0));
    CHECK(parse_json_number("-0") == nlohmann::json(0));
    CHECK(parse_json_number("12") == nlohmann::json(12));
    CHECK(parse_json_number("-7") == nlohmann::json(-7));
    CHECK(parse_json_number("0.5") == nlohmann::json(0.5));
    CHECK(parse_json_number("2.0")->is_number_integer());
    CHECK(parse_json_number("1e3") == nlohmann::json(1000));
    CHECK(parse_json_number("1.5E-3") == nlohmann::json(0.0015));
    CHECK(parse_json_number("9007199254740993") == nlohmann::json(9007199254740993LL)); // exactly
    CHECK(parse_json_number("18446744073709551615") == nlohmann::json(18446744073709551615ULL));
}
