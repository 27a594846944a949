#pragma once
// A number written as text by a user (`-i n=12`), read by JSON's grammar (RFC 8259 section 6):
// -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? and finite. Anything else is not a number: "0x10",
// "inf", "nan", "1e999", " 12", "12 ", "+5", ".5", "010" (strtod would take most of them).
#include <nlohmann/json.hpp>

#include <optional>
#include <string_view>

namespace luaflow {

// The number as a JSON value (an integer when it is a whole number that a double holds exactly), or
// nothing when `text` is not a JSON number.
std::optional<nlohmann::json> parse_json_number(std::string_view text);

} // namespace luaflow
