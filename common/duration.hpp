#pragma once
// Durations as users write them: a number of seconds, or "500ms", "30s", "5m", "2h", "1d".
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace luaflow {

using Millis = std::int64_t;

// Parses "500ms", "30s", "1.5m", "2h", "1d" or a bare number of seconds; nullopt when malformed or negative.
std::optional<Millis> parse_duration(std::string_view text);
// Seconds (possibly fractional) to milliseconds; nullopt when negative or not finite.
std::optional<Millis> duration_from_seconds(double seconds);
// The shortest exact spelling: 1500 -> "1.5s", 60000 -> "1m", 250 -> "250ms".
std::string format_duration(Millis ms);

} // namespace luaflow
