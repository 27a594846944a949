#pragma once
// Wall-clock times: milliseconds since the Unix epoch, shown as RFC 3339 with the local zone offset.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace luaflow {

using UnixMillis = std::int64_t;
using UnixSeconds = std::int64_t;

// Every reader of "now" asks here, so that they all agree when a test run moves it (SPEC 13):
// `luaflowctl test --at` starts it at a chosen time, `--fast` skips the waits nothing real fills.
UnixMillis now_unix_ms();
// Moves now_unix_ms() by `by` from here on (the system clock itself is untouched).
void shift_clock(std::int64_t by_ms);
// How far it is moved now.
std::int64_t clock_shift();
// "2026-11-22T10:00:00.123+01:00" in the process's local zone.
std::string format_rfc3339(UnixMillis t);
// Accepts "YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM|-HH:MM)"; a time without offset is read in the local zone.
std::optional<UnixMillis> parse_rfc3339(std::string_view text);

} // namespace luaflow
