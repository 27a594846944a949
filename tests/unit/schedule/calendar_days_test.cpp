// The check that an RRULE's day-level parts name some day: what it refuses, and, against libical's own
// expansion of random YEARLY rules, that it never refuses a rule libical finds a day for.
#include "daemon/schedule/calendar_days.hpp"
#include "daemon/schedule/recurrence.hpp"

#include <doctest/doctest.h>

#include <random>

using namespace luaflow::schedule;

namespace {

// libical's functions, as the daemon calls them (daemon/tz/ical_api.hpp).
const luaflow::tz::IcalApi& ical() {
    auto api = luaflow::tz::ical_api();
    REQUIRE_MESSAGE(api.ok(), api.error().message);
    return **api;
}

std::optional<std::string> never(const std::string& text) {
    icalrecurrencetype r = ical().recurrencetype_from_string(text.c_str());
    REQUIRE(r.freq != ICAL_NO_RECURRENCE);
    return days_never_matched(r);
}

// Whether libical yields any time for the rule from 2001 on (it gives up on its own at its last year;
// for some rules that never fire it makes no iterator at all).
bool libical_fires(const std::string& text) {
    icalrecurrencetype r = ical().recurrencetype_from_string(text.c_str());
    icalrecur_iterator* it = ical().recur_iterator_new(r, ical().time_from_string("20010101T000000"));
    if (!it) return false;
    const bool fires = !ical().time_is_null_time(ical().recur_iterator_next(it));
    ical().recur_iterator_free(it);
    return fires;
}

} // namespace

TEST_CASE("day-level parts that no year holds are named") {
    CHECK(never("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30") ==
          "no day of any year is in BYMONTH=2 and BYMONTHDAY=30");
    CHECK(never("FREQ=MONTHLY;BYMONTH=4,6,9,11;BYMONTHDAY=31") ==
          "no day of any year is in BYMONTH=4,6,9,11 and BYMONTHDAY=31");
    CHECK(never("FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=-30").has_value());
    CHECK(never("FREQ=DAILY;BYYEARDAY=1;BYMONTHDAY=2") ==
          "no day of any year is in BYMONTHDAY=2 and BYYEARDAY=1");
    CHECK(never("FREQ=YEARLY;BYYEARDAY=-1;BYMONTH=1").has_value());
    CHECK(never("FREQ=YEARLY;BYWEEKNO=1;BYMONTH=6").has_value());
    CHECK(never("FREQ=YEARLY;BYWEEKNO=54").has_value());
    // A fifth Monday in February is the 1st of a leap year's: only that day is -5MO.
    CHECK_FALSE(never("FREQ=MONTHLY;BYMONTH=2;BYDAY=-5MO;BYMONTHDAY=1"));
    CHECK(never("FREQ=MONTHLY;BYMONTH=2;BYDAY=-5MO;BYMONTHDAY=2,3,4,5,6,7") ==
          "no day of any year is in BYMONTH=2 and BYMONTHDAY=2,3,4,5,6,7 and its BYDAY");
}

TEST_CASE("rare days still count") {
    CHECK_FALSE(never("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29"));
    CHECK_FALSE(never("FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO"));
    CHECK_FALSE(never("FREQ=YEARLY;BYYEARDAY=366"));
    CHECK_FALSE(never("FREQ=YEARLY;BYYEARDAY=-366;BYMONTH=1;BYMONTHDAY=1"));
    CHECK_FALSE(never("FREQ=YEARLY;BYWEEKNO=53;BYMONTH=1")); // days of week 53 in early January
    CHECK_FALSE(never("FREQ=YEARLY;BYWEEKNO=1;BYMONTH=12;BYMONTHDAY=29"));
    CHECK_FALSE(never("FREQ=MONTHLY;BYMONTH=2;BYDAY=5SU")); // a leap year that starts on a Sunday... or not
    CHECK_FALSE(never("FREQ=YEARLY;BYDAY=53FR"));
    CHECK_FALSE(never("FREQ=YEARLY;BYWEEKNO=1;BYMONTH=1;WKST=SU"));
    CHECK_FALSE(never("FREQ=DAILY")); // nothing to check
    CHECK_FALSE(never("FREQ=WEEKLY;BYDAY=MO,FR"));
}

TEST_CASE("what is refused, libical finds no day for either") {
    // Random YEARLY and MONTHLY rules (libical takes a quarter of a second to give up on a MONTHLY one) over
    // the day-level parts whose meaning libical 3.0.16 gets right (BYWEEKNO is left out: LIBICAL_LIMITATIONS
    // in tests/integration/test_schedule_oracle.py).
    std::mt19937 rng(20261206);
    auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    const char* weekdays[] = {"MO", "TU", "WE", "TH", "FR", "SA", "SU"};
    int refused = 0, accepted = 0;
    for (int i = 0; i < 100; ++i) {
        const bool yearly = pick(0, 4) > 0;
        std::string text = yearly ? "FREQ=YEARLY" : "FREQ=MONTHLY";
        text += ";BYMONTH=" + std::to_string(pick(1, 12));
        if (pick(0, 3) > 0) {
            int d = pick(26, 31);
            text += ";BYMONTHDAY=" + std::to_string(pick(0, 2) == 0 ? -d : d);
        }
        if (yearly && pick(0, 3) == 0) {
            int d = pick(1, 366);
            text += ";BYYEARDAY=" + std::to_string(pick(0, 2) == 0 ? -d : d);
        }
        if (pick(0, 2) == 0) {
            int n = pick(1, 5);
            text += ";BYDAY=" + std::to_string(pick(0, 2) == 0 ? -n : n) + weekdays[pick(0, 6)];
        }
        CAPTURE(text);
        const bool none = never(text).has_value();
        if (none) {
            ++refused;
            CHECK_FALSE(libical_fires(text));
        } else {
            ++accepted;
            CHECK(libical_fires(text));
        }
    }
    // The generator reaches both sides.
    CHECK(refused > 20);
    CHECK(accepted > 20);
}

TEST_CASE("parse_rrule refuses a rule whose days never come, naming them") {
    auto r = parse_rrule("FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30");
    REQUIRE_FALSE(r);
    CHECK(r.error().message == "FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30 never fires: no day of any year is in "
                               "BYMONTH=2 and BYMONTHDAY=30");
}
