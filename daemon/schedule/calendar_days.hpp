#pragma once
// Whether the day-level parts of an RRULE (BYMONTH, BYMONTHDAY, BYYEARDAY, BYWEEKNO, BYDAY) can name
// any day at all. libical finds out that they cannot only by stepping through every period up to its
// last year: half a second for FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30, hours with FREQ=SECONDLY (issue 14).
#include <libical/ical.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace luaflow::schedule {

// Checks the 14 kinds of Gregorian year (leap or not, by the weekday of January 1), which between them
// hold every combination of month, day, weekday and week number that any year has. Returns what no day
// matches ("BYMONTH=2 and BYMONTHDAY=30"), or nothing when some day of some year matches (or the rule
// has no day-level part). Only what no year can hold is reported: where a part's meaning depends on
// more than the day (BYWEEKNO with a WKST other than MO), it is taken to match.
std::optional<std::string> days_never_matched(const icalrecurrencetype& rule);

// The day-level limits of a sub-daily rule (FREQ=SECONDLY, MINUTELY, HOURLY: BYMONTH, BYMONTHDAY,
// BYYEARDAY, BYDAY, all limits there by RFC 5545's table), checked here instead of by libical, which
// steps through every unit of the days they leave out: with FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=29;
// BYDAY=MO, 17 years of minutes, 14 s, before the first time.
class DayFilter {
  public:
    // Moves those parts out of a sub-daily rule; nothing (and the rule unchanged) for another FREQ or a
    // rule without them.
    static std::optional<DayFilter> take(icalrecurrencetype& rule);

    // Days are counted from 1970-01-01 (naive seconds / 86400, rounded down).
    bool matches(std::int64_t day) const;
    // The first day after `day` that matches; nothing within 400 years (the Gregorian cycle: never).
    std::optional<std::int64_t> next(std::int64_t day) const;

  private:
    std::vector<int> months_, month_days_, year_days_, weekdays_; // weekdays: 1 = SU ... 7 = SA
};

} // namespace luaflow::schedule
