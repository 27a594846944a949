#pragma once
// IANA time zones from the system tz database, through libical, and the two conversions schedules
// need: an instant to its wall-clock time, and a wall-clock time to its instant by RFC 5545 3.3.5.
// UTC needs no libical, nor does a time shown in the process's own zone (format_scheduled): only a zone
// looked up by another name loads it (daemon/tz/ical_api.hpp).
#include "common/result.hpp"
#include "common/time_format.hpp"

#include <cstdint>
#include <optional>
#include <string>

struct _icaltimezone;

namespace luaflow::tz {

// A wall-clock time with no zone ("floating" in RFC 5545 terms).
struct LocalTime {
    int year = 1970, month = 1, day = 1, hour = 0, minute = 0, second = 0;
    auto operator<=>(const LocalTime&) const = default;
};

// The wall-clock fields counted as seconds since 1970-01-01T00:00:00 (no zone, no DST): the
// arithmetic of local times.
std::int64_t naive_seconds(const LocalTime& t);
LocalTime from_naive_seconds(std::int64_t s);
// "2026-01-05T09:00:00".
std::string format_local_time(const LocalTime& t);
// "2026-01-05T09:00:00" (seconds optional) or nothing.
bool parse_local_time(const std::string& text, LocalTime& out);

// The name of the system's zone: $TZ (without a leading ':') when set, else /etc/localtime's link, else
// /etc/timezone; "" when none says. Read without libical.
std::string system_zone_name();

class Zone {
  public:
    Zone() = default; // UTC, without libical
    // A zone by its IANA name ("Europe/Berlin", "UTC"); an error names it when the system has no such zone,
    // or names libical.so.3 and the loader's reason when libical cannot be loaded (any zone but UTC).
    static Result<Zone> find(const std::string& name);
    // The system's zone: system_zone_name() when it is a zone libical knows, else UTC.
    static Zone system();

    const std::string& name() const { return name_; }
    // Seconds east of UTC at instant t.
    int offset_at(UnixSeconds t) const;
    LocalTime local(UnixSeconds t) const;
    // The instant of a wall-clock time (RFC 5545 section 3.3.5): in a gap (spring forward) read with the
    // offset before the gap, so 02:30 becomes 03:30 new time; an ambiguous time (fall back) is its first
    // instant.
    UnixSeconds instant(const LocalTime& t) const;
    // True when the offset is the same from `t - window` to `t + window` (no transition near t).
    bool steady_around(UnixSeconds t, std::int64_t window) const;

  private:
    Zone(_icaltimezone* tz, std::string name) : tz_(tz), name_(std::move(name)) {}
    _icaltimezone* tz_ = nullptr; // owned by libical's built-in zone table, never freed; null: UTC
    std::string name_ = "UTC";
};

// "2026-11-22T10:00:00+01:00": whole seconds, with the zone's offset at that instant.
std::string format_in_zone(UnixSeconds t, const Zone& zone);

// A scheduled run's nominal time (scheduled_for) in the zone of the rule that fired it (an IANA name),
// as `next` prints it. Without a zone the store knows (rows older than the column), in the process's
// zone with milliseconds, as every other time. UTC and the process's own zone need no libical.
std::string format_scheduled(std::int64_t unix_ms, const std::optional<std::string>& zone);

} // namespace luaflow::tz
