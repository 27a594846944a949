#include "common/duration.hpp"

#include <doctest/doctest.h>

using namespace luaflow;

TEST_CASE("parse_duration reads every unit and bare seconds") {
    CHECK(parse_duration("500ms") == 500);
    CHECK(parse_duration("30s") == 30'000);
    CHECK(parse_duration("1.5m") == 90'000);
    CHECK(parse_duration("2h") == 7'200'000);
    CHECK(parse_duration("1d") == 86'400'000);
    CHECK(parse_duration("12") == 12'000);
    CHECK(parse_duration("0.25") == 250);
}

TEST_CASE("parse_duration refuses malformed and negative durations") {
    CHECK_FALSE(parse_duration(""));
    CHECK_FALSE(parse_duration("5x"));
    CHECK_FALSE(parse_duration("s"));
    CHECK_FALSE(parse_duration("-1s"));
    CHECK_FALSE(parse_duration("1 s"));
    CHECK_FALSE(parse_duration("inf"));
    CHECK_FALSE(duration_from_seconds(-0.5));
}

TEST_CASE("format_duration picks the shortest exact spelling") {
    CHECK(format_duration(250) == "250ms");
    CHECK(format_duration(1000) == "1s");
    CHECK(format_duration(1500) == "1.5s");
    CHECK(format_duration(60'000) == "1m");
    CHECK(format_duration(3'600'000) == "1h");
    CHECK(format_duration(86'400'000) == "1d");
    CHECK(format_duration(0) == "0ms");
}

TEST_CASE("issue 14 (fuzzing): every duration prints as what reads back as itself") {
    CHECK(format_duration(1'111'000) == "1111s"); // was 18.5167m
    CHECK(format_duration(10'000'000) == "10000s");
    CHECK(format_duration(5'400'000) == "1.5h");
    CHECK(format_duration(1'234) == "1.234s");
    for (Millis ms : {Millis{1}, Millis{999}, Millis{61'001}, Millis{86'399'999}, Millis{123'456'789}})
        CHECK(parse_duration(format_duration(ms)) == ms);
}

TEST_CASE("issue 14 (fuzzing): a duration is a decimal number and a unit, nothing after a NUL") {
    CHECK_FALSE(parse_duration(std::string_view("30\0x", 4)));
    CHECK_FALSE(parse_duration("0x10"));
    CHECK_FALSE(parse_duration(" 30s"));
    CHECK_FALSE(parse_duration("nan"));
    CHECK(parse_duration(".5s") == 500);
}
