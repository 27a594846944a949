// Recurrences: libical's expansion in local time, instants in order, each once, EXDATE and UNTIL.
#include "daemon/schedule/rules.hpp"

#include <doctest/doctest.h>

#include <vector>

using namespace luaflow::schedule;
using luaflow::UnixSeconds;
using nlohmann::json;

namespace {

std::vector<UnixSeconds> take(Cursor& c, int n) {
    std::vector<UnixSeconds> out;
    while (static_cast<int>(out.size()) < n)
        if (auto t = c.next())
            out.push_back(*t);
        else
            break;
    return out;
}

// The same series with no key: nothing kept, every occurrence expanded by this cursor.
std::shared_ptr<const RecurrenceSpec> unkept(const std::shared_ptr<const RecurrenceSpec>& spec) {
    auto copy = std::make_shared<RecurrenceSpec>(*spec);
    copy->key.clear();
    return copy;
}

// The next n occurrences, in the rule's zone. Each case also checks that a cursor served its first
// occurrence from what was kept goes on exactly as one that expands everything itself.
std::vector<std::string> next_of(const json& schedule, const std::string& after, int n) {
    auto rules = parse_schedule(schedule);
    REQUIRE_MESSAGE(rules, rules.error().message);
    const Rule& r = rules.value().at(0);
    LocalTime a;
    REQUIRE(parse_local_time(after, a));
    auto spec = recurrence_of(r, 0);
    REQUIRE_FALSE(spec->key.empty());
    Cursor c(spec, r.zone.instant(a)), plain(unkept(spec), r.zone.instant(a));
    const std::vector<UnixSeconds> got = take(c, n);
    CHECK(got == take(plain, n));
    Cursor again(recurrence_of(r, 0), r.zone.instant(a)); // its first occurrence kept now
    CHECK(take(again, n) == got);
    std::vector<std::string> out;
    for (UnixSeconds t : got)
        out.push_back(format_in_zone(t, r.zone));
    return out;
}

} // namespace

TEST_CASE("a daily 02:30 moves to 03:30 on the gap day only, and fires once on the overlap day") {
    json daily = {{"rrule", "FREQ=DAILY"}, {"dtstart", "2027-03-26T02:30:00"}, {"tz", "Europe/Berlin"}};
    CHECK(next_of(daily, "2027-03-26T00:00:00", 4) ==
          std::vector<std::string>{"2027-03-26T02:30:00+01:00", "2027-03-27T02:30:00+01:00",
                                   "2027-03-28T03:30:00+02:00", "2027-03-29T02:30:00+02:00"});
    CHECK(next_of(daily, "2027-10-30T00:00:00", 3) == std::vector<std::string>{"2027-10-30T02:30:00+02:00",
                                                                               "2027-10-31T02:30:00+02:00",
                                                                               "2027-11-01T02:30:00+01:00"});
}

TEST_CASE("times moved by a gap come in instant order and each once") {
    // Every 55 minutes from midnight: 02:45 (in the gap) becomes 03:45, after the real 03:40.
    json rule = {
        {"rrule", "FREQ=MINUTELY;INTERVAL=55"}, {"dtstart", "2027-03-28T00:00:00"}, {"tz", "Europe/Berlin"}};
    CHECK(next_of(rule, "2027-03-28T01:00:00", 3) == std::vector<std::string>{"2027-03-28T01:50:00+01:00",
                                                                              "2027-03-28T03:40:00+02:00",
                                                                              "2027-03-28T03:45:00+02:00"});
    // Hourly across the gap: 02:00 becomes 03:00, which the real 03:00 also names; once.
    json hourly = {{"rrule", "FREQ=HOURLY"}, {"dtstart", "2027-03-28T00:00:00"}, {"tz", "Europe/Berlin"}};
    CHECK(next_of(hourly, "2027-03-28T00:30:00", 3) == std::vector<std::string>{"2027-03-28T01:00:00+01:00",
                                                                                "2027-03-28T03:00:00+02:00",
                                                                                "2027-03-28T04:00:00+02:00"});
}

TEST_CASE("seeking far ahead keeps the interval of the series") {
    // 5 does not divide 24: the hours shift every day (libical's own set_start gets this wrong).
    json rule = {{"rrule", "FREQ=HOURLY;INTERVAL=5"}, {"dtstart", "2026-01-01T00:00:00"}, {"tz", "UTC"}};
    // 2026-03-01T00:00 is 1416 hours after the start: 1416 = 5 * 283 + 1, so the next is at 04:00.
    CHECK(next_of(rule, "2026-03-01T00:00:00", 2) ==
          std::vector<std::string>{"2026-03-01T04:00:00+00:00", "2026-03-01T09:00:00+00:00"});
}

TEST_CASE("EXDATE removes an occurrence, COUNT and UNTIL end the series") {
    json rule = {{"rrule", "FREQ=DAILY;COUNT=3"},
                 {"dtstart", "2026-01-05T09:00:00"},
                 {"tz", "America/New_York"},
                 {"exdate", {"2026-01-06T09:00:00"}}};
    CHECK(next_of(rule, "2026-01-01T00:00:00", 5) ==
          std::vector<std::string>{"2026-01-05T09:00:00-05:00", "2026-01-07T09:00:00-05:00"});
    // UNTIL is an instant: 02:xx in the gap becomes 03:xx, after UNTIL, and is not an occurrence.
    json until = {{"rrule", "FREQ=MINUTELY;INTERVAL=30;UNTIL=20270328T010000Z"},
                  {"dtstart", "2027-03-28T01:00:00"},
                  {"tz", "Europe/Berlin"}};
    CHECK(next_of(until, "2027-03-28T00:00:00", 10) == std::vector<std::string>{"2027-03-28T01:00:00+01:00",
                                                                                "2027-03-28T01:30:00+01:00",
                                                                                "2027-03-28T03:00:00+02:00"});
}

TEST_CASE("every other Sunday from a Monday start keeps the start's week (libical alone skips it)") {
    json rule = {
        {"rrule", "FREQ=WEEKLY;INTERVAL=2;BYDAY=SU"}, {"dtstart", "2026-01-05T09:00:00"}, {"tz", "UTC"}};
    CHECK(next_of(rule, "2026-01-01T00:00:00", 3) == std::vector<std::string>{"2026-01-11T09:00:00+00:00",
                                                                              "2026-01-25T09:00:00+00:00",
                                                                              "2026-02-08T09:00:00+00:00"});
    // WKST=SA: the week of Sunday 2026-07-19 began on the 18th, so Wednesday the 22nd is in it.
    json wkst = {{"rrule", "FREQ=WEEKLY;INTERVAL=3;BYDAY=WE,SU;WKST=SA;COUNT=3"},
                 {"dtstart", "2026-07-19T00:00:00"},
                 {"tz", "Australia/Sydney"}};
    CHECK(next_of(wkst, "2026-01-01T00:00:00", 5) == std::vector<std::string>{"2026-07-19T00:00:00+10:00",
                                                                              "2026-07-22T00:00:00+10:00",
                                                                              "2026-08-09T00:00:00+10:00"});
}

TEST_CASE("COUNT counts the series in local order and libical's doubled start once") {
    json rule = {
        {"rrule", "FREQ=HOURLY;BYHOUR=3,4,9;COUNT=3"}, {"dtstart", "2026-01-05T03:00:00"}, {"tz", "UTC"}};
    CHECK(next_of(rule, "2026-01-01T00:00:00", 5) == std::vector<std::string>{"2026-01-05T03:00:00+00:00",
                                                                              "2026-01-05T04:00:00+00:00",
                                                                              "2026-01-05T09:00:00+00:00"});
}

TEST_CASE("a series whose start the rule does not match keeps the first time of its list") {
    // libical 3.0.16 alone skips the first BY value of the start's day, hour or minute.
    auto from = [](const std::string& rrule, const std::string& dtstart) {
        return json{{"rrule", rrule}, {"dtstart", dtstart}, {"tz", "UTC"}};
    };
    // Loaded at 07:05 (the default series start is the load minute): today's 08:00 is the first.
    CHECK(next_of(from("FREQ=HOURLY;BYHOUR=8,9,10;BYMINUTE=0", "2026-01-05T07:05:00"), "2026-01-05T07:05:00",
                  4) == std::vector<std::string>{"2026-01-05T08:00:00+00:00", "2026-01-05T09:00:00+00:00",
                                                 "2026-01-05T10:00:00+00:00", "2026-01-06T08:00:00+00:00"});
    CHECK(next_of(from("FREQ=HOURLY;BYHOUR=9,10,11;BYMINUTE=0", "2026-01-05T08:30:00"), "2026-01-05T00:00:00",
                  2) == std::vector<std::string>{"2026-01-05T09:00:00+00:00", "2026-01-05T10:00:00+00:00"});
    CHECK(next_of(from("FREQ=HOURLY;BYHOUR=9,10,11", "2026-01-05T08:30:00"), "2026-01-05T00:00:00", 2) ==
          std::vector<std::string>{"2026-01-05T09:30:00+00:00", "2026-01-05T10:30:00+00:00"});
    CHECK(next_of(from("FREQ=MINUTELY;BYMINUTE=15,30", "2026-01-05T00:00:00"), "2026-01-04T23:59:59", 3) ==
          std::vector<std::string>{"2026-01-05T00:15:00+00:00", "2026-01-05T00:30:00+00:00",
                                   "2026-01-05T01:15:00+00:00"});
    CHECK(next_of(from("FREQ=SECONDLY;BYSECOND=10,20", "2026-01-05T00:00:07"), "2026-01-05T00:00:00", 2) ==
          std::vector<std::string>{"2026-01-05T00:00:10+00:00", "2026-01-05T00:00:20+00:00"});
    // COUNT counts from the start: the first of the list is one of them, nothing before the start is.
    CHECK(next_of(from("FREQ=HOURLY;BYHOUR=6,8,9;BYMINUTE=0;COUNT=2", "2026-01-05T07:05:00"),
                  "2026-01-01T00:00:00",
                  5) == std::vector<std::string>{"2026-01-05T08:00:00+00:00", "2026-01-05T09:00:00+00:00"});
}

TEST_CASE("an INTERVAL holds with a limit of its own unit (libical alone fires every listed unit)") {
    auto from = [](const std::string& rrule, const std::string& dtstart) {
        return json{{"rrule", rrule}, {"dtstart", dtstart}, {"tz", "UTC"}};
    };
    CHECK(next_of(from("FREQ=HOURLY;INTERVAL=2;BYHOUR=9,10,11;BYMINUTE=0", "2026-01-05T09:00:00"),
                  "2026-01-05T00:00:00",
                  3) == std::vector<std::string>{"2026-01-05T09:00:00+00:00", "2026-01-05T11:00:00+00:00",
                                                 "2026-01-06T09:00:00+00:00"});
    CHECK(next_of(from("FREQ=HOURLY;INTERVAL=3;BYHOUR=3,4,5,6;BYMINUTE=0", "2026-01-05T00:00:00"),
                  "2026-01-05T00:00:00",
                  3) == std::vector<std::string>{"2026-01-05T03:00:00+00:00", "2026-01-05T06:00:00+00:00",
                                                 "2026-01-06T03:00:00+00:00"});
    CHECK(next_of(from("FREQ=SECONDLY;INTERVAL=2;BYSECOND=15,30,45", "2026-01-05T00:15:15"),
                  "2026-01-05T00:00:00",
                  3) == std::vector<std::string>{"2026-01-05T00:15:15+00:00", "2026-01-05T00:15:45+00:00",
                                                 "2026-01-05T00:16:15+00:00"});
    // COUNT counts only the series' own times.
    CHECK(next_of(from("FREQ=MINUTELY;INTERVAL=2;BYMINUTE=15,30,45;COUNT=3", "2026-01-05T00:15:00"),
                  "2026-01-05T00:00:00",
                  5) == std::vector<std::string>{"2026-01-05T00:15:00+00:00", "2026-01-05T00:45:00+00:00",
                                                 "2026-01-05T01:15:00+00:00"});
}

TEST_CASE("the last day of each month, daily or yearly, as the RFC means it") {
    json daily = {{"rrule", "FREQ=DAILY;BYMONTHDAY=-1;BYHOUR=18;BYMINUTE=0;BYSECOND=0"},
                  {"tz", "UTC"},
                  {"dtstart", "2026-01-01T00:00:00"}};
    CHECK(next_of(daily, "2026-01-01T00:00:00", 3) == std::vector<std::string>{"2026-01-31T18:00:00+00:00",
                                                                               "2026-02-28T18:00:00+00:00",
                                                                               "2026-03-31T18:00:00+00:00"});
    json yearly = {
        {"rrule", "FREQ=YEARLY;BYMONTHDAY=13;BYDAY=FR"}, {"tz", "UTC"}, {"dtstart", "2026-01-01T09:00:00"}};
    CHECK(next_of(yearly, "2026-01-01T00:00:00", 3) == std::vector<std::string>{"2026-02-13T09:00:00+00:00",
                                                                                "2026-03-13T09:00:00+00:00",
                                                                                "2026-11-13T09:00:00+00:00"});
}

TEST_CASE("a cron schedule is the union of its rules, in its zone") {
    // Day of month 1 OR Monday (cron's rule when both are restricted).
    json cron = {{"cron", "0 9 1 * mon"}, {"tz", "Asia/Kolkata"}};
    CHECK(next_of(cron, "2026-11-29T00:00:00", 3) == std::vector<std::string>{"2026-11-30T09:00:00+05:30",
                                                                              "2026-12-01T09:00:00+05:30",
                                                                              "2026-12-07T09:00:00+05:30"});
}

TEST_CASE("schedule errors name the rule and the part") {
    auto e = [](const json& j) {
        auto r = parse_schedule(j);
        REQUIRE_FALSE(r);
        return r.error().message;
    };
    CHECK(e("FREQ=HOURY") == "schedule: FREQ=HOURY is not a valid RRULE: bad FREQ=HOURY");
    CHECK(e(json{{"rrule", "FREQ=DAILY;BYDAY=XX"}}) ==
          "schedule.rrule: FREQ=DAILY;BYDAY=XX is not a valid RRULE: bad part BYDAY=XX");
    CHECK(e(json{{"rrule", "FREQ=DAILY;COUNT=2;UNTIL=20270101T000000Z"}})
              .find("UNTIL=20270101T000000Z conflicts with COUNT=2") != std::string::npos);
    CHECK(e(json::array({json{{"rrule", "FREQ=DAILY"}}, json{{"rrule", "FREQ=DAILY"}, {"tz", "Nowhere"}}}))
              .rfind("schedule[2].tz: unknown time zone 'Nowhere'", 0) == 0);
    CHECK(e(json{{"cron", "* * *"}}).rfind("schedule.cron: cron: expected 5 fields", 0) == 0);
    CHECK(e(json{{"rrule", "FREQ=DAILY"}, {"catchup", "some"}}) ==
          "schedule.catchup: expected \"none\", \"latest\" or \"all\", got \"some\"");
    CHECK(e(json{{"rrule", "FREQ=DAILY"}, {"exdate", {"2026-13-01T00:00:00"}}})
              .rfind("schedule.exdate[1]: ", 0) == 0);
    CHECK(e(json{{"cron", "@daily"}, {"dtstart", "2026-01-01T00:00:00"}}) ==
          "schedule.dtstart: not used with cron (only with rrule)");
}

TEST_CASE("a sub-daily rule on rare days finds them without stepping through the units between") {
    // libical alone steps through every minute (second) of the 17 years before the first time: 14 s on
    // the loop for the MINUTELY rule, hours for the SECONDLY one. The times are python-dateutil's.
    auto from = [](const char* rrule) {
        return json{{"rrule", rrule}, {"dtstart", "2026-12-06T14:30:00"}, {"tz", "UTC"}};
    };
    CHECK(next_of(from("FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO"), "2026-12-06T14:29:59", 3) ==
          std::vector<std::string>{"2044-02-29T00:00:00+00:00", "2044-02-29T00:01:00+00:00",
                                   "2044-02-29T00:02:00+00:00"});
    CHECK(next_of(from("FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO;BYHOUR=23;BYMINUTE=59"),
                  "2026-12-06T14:29:59",
                  2) == std::vector<std::string>{"2044-02-29T23:59:00+00:00", "2044-02-29T23:59:01+00:00"});
    // On the series' grid of 5 hours from DTSTART, across the 14 months skipped.
    CHECK(next_of(from("FREQ=HOURLY;INTERVAL=5;BYMONTH=2;BYMONTHDAY=29"), "2026-12-06T14:29:59", 4) ==
          std::vector<std::string>{"2028-02-29T04:30:00+00:00", "2028-02-29T09:30:00+00:00",
                                   "2028-02-29T14:30:00+00:00", "2028-02-29T19:30:00+00:00"});
    CHECK(next_of(from("FREQ=HOURLY;BYYEARDAY=-1;BYMINUTE=15,45"), "2026-12-06T14:29:59", 3) ==
          std::vector<std::string>{"2026-12-31T00:15:00+00:00", "2026-12-31T00:45:00+00:00",
                                   "2026-12-31T01:15:00+00:00"});
    // COUNT counts the series' own times only: the days skipped hold none.
    CHECK(next_of(from("FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=29;COUNT=2"), "2026-12-06T14:29:59", 3) ==
          std::vector<std::string>{"2028-02-29T00:30:00+00:00", "2028-02-29T01:30:00+00:00"});
}

TEST_CASE("a rule text is parsed once, and every rule with it shares the result") {
    const KeptCounts before = kept_counts();
    auto a = parse_rrule("FREQ=DAILY;BYHOUR=7;BYMINUTE=13;BYSECOND=29");
    auto b = parse_rrule("FREQ=DAILY;BYHOUR=7;BYMINUTE=13;BYSECOND=29");
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    CHECK(a.value() == b.value()); // the same parsed rule, not a copy
    CHECK(kept_counts().rules_parsed == before.rules_parsed + 1);
    // Errors are kept too, with their message.
    auto bad = parse_rrule("FREQ=DAILY;BYHOUR=7;BYMINUTE=61;BYSECOND=29");
    REQUIRE_FALSE(bad.ok());
    auto bad_again = parse_rrule("FREQ=DAILY;BYHOUR=7;BYMINUTE=61;BYSECOND=29");
    REQUIRE_FALSE(bad_again.ok());
    CHECK(bad_again.error().message == bad.error().message);
    CHECK(bad.error().message.find("bad part BYMINUTE=61") != std::string::npos);
    CHECK(kept_counts().rules_parsed == before.rules_parsed + 2);
    // Two workflows with the rule, in two zones: one parse.
    auto rules = parse_schedule(
        json::array({json{{"rrule", "FREQ=DAILY;BYHOUR=7;BYMINUTE=13;BYSECOND=29"}},
                     json{{"rrule", "FREQ=DAILY;BYHOUR=7;BYMINUTE=13;BYSECOND=29"}, {"tz", "Asia/Tokyo"}}}));
    REQUIRE(rules.ok());
    CHECK(rules.value()[0].rrules.at(0) == a.value());
    CHECK(rules.value()[1].rrules.at(0) == a.value());
    CHECK(kept_counts().rules_parsed == before.rules_parsed + 2);
}

TEST_CASE("cursors of one series from one instant expand its first occurrence once") {
    // As at start-up: many workflows with the same rule, zone and stored start, asked from one instant.
    json schedule = {{"rrule", "FREQ=WEEKLY;BYDAY=MO,TH;BYHOUR=4;BYMINUTE=15"}, {"tz", "Pacific/Auckland"}};
    auto rules = parse_schedule(schedule);
    REQUIRE(rules.ok());
    const Rule& r = rules.value().at(0);
    const UnixSeconds dtstart = 1'790'000'040, after = 1'790'000'100;
    const KeptCounts before = kept_counts();
    std::vector<UnixSeconds> firsts;
    for (int i = 0; i < 100; ++i) {
        Cursor c(recurrence_of(r, dtstart), after);
        firsts.push_back(c.next().value());
    }
    CHECK(kept_counts().firsts_computed == before.firsts_computed + 1);
    CHECK(kept_counts().firsts_reused == before.firsts_reused + 99);
    Cursor plain(unkept(recurrence_of(r, dtstart)), after);
    CHECK(firsts == std::vector<UnixSeconds>(100, plain.next().value()));
    // Another instant, another start, another zone: each a series (or instant) of its own.
    (void)Cursor(recurrence_of(r, dtstart), after + 1).next();
    (void)Cursor(recurrence_of(r, dtstart + 60), after).next();
    json tokyo = schedule;
    tokyo["tz"] = "Asia/Tokyo";
    (void)Cursor(recurrence_of(parse_schedule(tokyo).value().at(0), dtstart), after).next();
    CHECK(kept_counts().firsts_computed == before.firsts_computed + 4);
    // Nothing is expanded before the first next(), and a cursor dropped unasked costs nothing.
    { Cursor unused(recurrence_of(r, dtstart), after + 2); }
    CHECK(kept_counts().firsts_computed == before.firsts_computed + 4);
}

TEST_CASE("a series with nothing after the instant is kept as such, and stays ended") {
    json ended = {
        {"rrule", "FREQ=DAILY;COUNT=2"}, {"dtstart", "2026-01-05T09:00:00"}, {"tz", "Europe/Berlin"}};
    auto r = parse_schedule(ended).value().at(0);
    const UnixSeconds after = r.zone.instant({2026, 2, 1, 0, 0, 0});
    const KeptCounts before = kept_counts();
    for (int i = 0; i < 3; ++i) {
        Cursor c(recurrence_of(r, 0), after);
        CHECK_FALSE(c.next());
        CHECK_FALSE(c.next());
    }
    CHECK(kept_counts().firsts_computed == before.firsts_computed + 1);
    // Asked from before its end, the same series still has its two times.
    Cursor from_start(recurrence_of(r, 0), r.zone.instant({2026, 1, 1, 0, 0, 0}));
    CHECK(take(from_start, 5).size() == 2);
}
