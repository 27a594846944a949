#include "daemon/schedule/cron.hpp"
#include "daemon/tz/ical_api.hpp"

#include <ctime>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include <doctest/doctest.h>

using namespace luaflow;
using luaflow::schedule::cron_to_rrules;

namespace {

// libical's functions, as the daemon calls them (daemon/tz/ical_api.hpp).
const luaflow::tz::IcalApi& ical() {
    auto api = luaflow::tz::ical_api();
    REQUIRE_MESSAGE(api.ok(), api.error().message);
    return **api;
}

std::vector<std::string> rules_of(std::string_view expr) {
    auto rules = cron_to_rrules(expr);
    INFO("expression: ", std::string(expr));
    REQUIRE_MESSAGE(rules.ok(), rules.error().message);
    return rules.value();
}

std::string error_of(std::string_view expr) {
    auto rules = cron_to_rrules(expr);
    INFO("expression: ", std::string(expr));
    REQUIRE_FALSE(rules.ok());
    CHECK(rules.error().code == ErrorCode::invalid);
    return rules.error().message;
}

// The one rule an expression becomes, with the FREQ and BYSECOND ends every rule shares left off.
std::string single_rule(std::string_view expr) {
    auto rules = rules_of(expr);
    REQUIRE(rules.size() == 1);
    std::string rule = rules[0];
    REQUIRE(rule.starts_with("FREQ=DAILY;"));
    REQUIRE(rule.ends_with(";BYSECOND=0"));
    return rule.substr(11, rule.size() - 11 - 11);
}

// What cron looks at in one minute; month 1-12, weekday 0 = Sunday.
struct Minute {
    int minute, hour, day, month, weekday;
};
using Matcher = std::function<bool(const Minute&)>;

std::time_t utc(int year, int month, int day) {
    std::tm tm{};
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    return timegm(&tm);
}

// Brute force, the way cron itself runs: every minute of January to March of `year`, asked of `matches`.
std::set<std::time_t> brute_force(int year, const Matcher& matches) {
    std::set<std::time_t> out;
    for (std::time_t t = utc(year, 1, 1); t < utc(year, 4, 1); t += 60) {
        std::tm tm{};
        gmtime_r(&t, &tm);
        if (matches({tm.tm_min, tm.tm_hour, tm.tm_mday, tm.tm_mon + 1, tm.tm_wday})) out.insert(t);
    }
    return out;
}

// libical's expansion of the rules over the same months, merged: floating times, read as UTC.
std::set<std::time_t> expand(const std::vector<std::string>& rules, int year) {
    std::set<std::time_t> out;
    std::string dtstart = std::to_string(year) + "0101T000000";
    for (const std::string& text : rules) {
        icalrecurrencetype rule = ical().recurrencetype_from_string(text.c_str());
        REQUIRE_MESSAGE(rule.freq != ICAL_NO_RECURRENCE, text);
        icalrecur_iterator* it = ical().recur_iterator_new(rule, ical().time_from_string(dtstart.c_str()));
        REQUIRE(it != nullptr);
        for (icaltimetype t = ical().recur_iterator_next(it); !ical().time_is_null_time(t);
             t = ical().recur_iterator_next(it)) {
            std::time_t when = ical().time_as_timet(t);
            if (when >= utc(year, 4, 1)) break;
            out.insert(when);
        }
        ical().recur_iterator_free(it);
    }
    return out;
}

void check_expansion(std::string_view expr, const Matcher& matches, int year = 2026) {
    INFO("expression: ", std::string(expr));
    std::set<std::time_t> expected = brute_force(year, matches);
    std::set<std::time_t> got = expand(rules_of(expr), year);
    CHECK(got.size() == expected.size());
    CHECK(got == expected);
}

} // namespace

TEST_CASE("cron_to_rrules turns a working-hours expression into one FREQ=DAILY rule") {
    CHECK(rules_of("*/15 9-17 * * mon-fri") ==
          std::vector<std::string>{"FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9,10,11,12,13,14,15,16,17;"
                                   "BYMINUTE=0,15,30,45;BYSECOND=0"});
}

TEST_CASE(
    "cron_to_rrules keeps the part order FREQ, BYMONTH, BYMONTHDAY, BYDAY, BYHOUR, BYMINUTE, BYSECOND") {
    CHECK(rules_of("30 4 1,15 jan,jul */2") ==
          std::vector<std::string>{"FREQ=DAILY;BYMONTH=1,7;BYMONTHDAY=1,15;BYDAY=SU,TU,TH,SA;BYHOUR=4;"
                                   "BYMINUTE=30;BYSECOND=0"});
}

TEST_CASE("cron_to_rrules leaves out the day and month parts that do not restrict") {
    CHECK(single_rule("0 0 * * *") == "BYHOUR=0;BYMINUTE=0");
    CHECK(single_rule("0 0 1-31 1-12 0-6") == "BYHOUR=0;BYMINUTE=0");
    CHECK(single_rule("0 0 * * 0-7") == "BYHOUR=0;BYMINUTE=0");
}

TEST_CASE("cron_to_rrules always lists every hour and minute of a star") {
    std::string hours, minutes;
    for (int h = 0; h < 24; ++h)
        hours += (h ? "," : "") + std::to_string(h);
    for (int m = 0; m < 60; ++m)
        minutes += (m ? "," : "") + std::to_string(m);
    CHECK(single_rule("* * * * *") == "BYHOUR=" + hours + ";BYMINUTE=" + minutes);
}

TEST_CASE("cron_to_rrules reads numbers, ranges, steps and lists in every field") {
    CHECK(single_rule("7 * * * *").ends_with(";BYMINUTE=7"));
    CHECK(single_rule("10-13 * * * *").ends_with(";BYMINUTE=10,11,12,13"));
    CHECK(single_rule("*/20 * * * *").ends_with(";BYMINUTE=0,20,40"));
    CHECK(single_rule("10-30/10 * * * *").ends_with(";BYMINUTE=10,20,30"));
    CHECK(single_rule("50/4 * * * *").ends_with(";BYMINUTE=50,54,58"));
    CHECK(single_rule("5/100 * * * *").ends_with(";BYMINUTE=5"));
    CHECK(single_rule("0 */6 * * *") == "BYHOUR=0,6,12,18;BYMINUTE=0");
    CHECK(single_rule("0 22/1 * * *") == "BYHOUR=22,23;BYMINUTE=0");
    CHECK(single_rule("0 0 1-10/3 * *") == "BYMONTHDAY=1,4,7,10;BYHOUR=0;BYMINUTE=0");
    CHECK(single_rule("0 0 28/2 * *") == "BYMONTHDAY=28,30;BYHOUR=0;BYMINUTE=0");
    CHECK(single_rule("0 0 1 */3 *") == "BYMONTH=1,4,7,10;BYMONTHDAY=1;BYHOUR=0;BYMINUTE=0");
    CHECK(single_rule("0 0 1 2-12/5 *") == "BYMONTH=2,7,12;BYMONTHDAY=1;BYHOUR=0;BYMINUTE=0");
    CHECK(single_rule("0 0 * * 1-5/2") == "BYDAY=MO,WE,FR;BYHOUR=0;BYMINUTE=0");
}

TEST_CASE("cron_to_rrules sorts and de-duplicates overlapping list items") {
    CHECK(single_rule("45,5,1-10/2,5 3,1,2,1 * * *") == "BYHOUR=1,2,3;BYMINUTE=1,3,5,7,9,45");
    CHECK(single_rule("0 0 * * fri,mon,1,5") == "BYDAY=MO,FR;BYHOUR=0;BYMINUTE=0");
}

TEST_CASE("cron_to_rrules reads month and weekday names in any case, alone and in ranges") {
    CHECK(single_rule("0 0 1 jan *") == "BYMONTH=1;BYMONTHDAY=1;BYHOUR=0;BYMINUTE=0");
    CHECK(single_rule("0 0 1 JAN-Mar,dec *") == "BYMONTH=1,2,3,12;BYMONTHDAY=1;BYHOUR=0;BYMINUTE=0");
    CHECK(single_rule("0 0 1 feb/4 *") == "BYMONTH=2,6,10;BYMONTHDAY=1;BYHOUR=0;BYMINUTE=0");
    CHECK(single_rule("0 0 * * Sun,WED,sat") == "BYDAY=SU,WE,SA;BYHOUR=0;BYMINUTE=0");
    CHECK(single_rule("0 0 * * tue-thu") == "BYDAY=TU,WE,TH;BYHOUR=0;BYMINUTE=0");
    CHECK(single_rule("0 0 * * 1-fri") == "BYDAY=MO,TU,WE,TH,FR;BYHOUR=0;BYMINUTE=0");
}

TEST_CASE("cron_to_rrules treats day-of-week 7 as Sunday, like 0") {
    CHECK(single_rule("0 0 * * 7") == "BYDAY=SU;BYHOUR=0;BYMINUTE=0");
    CHECK(single_rule("0 0 * * 0,7") == "BYDAY=SU;BYHOUR=0;BYMINUTE=0");
    CHECK(single_rule("0 0 * * 5-7") == "BYDAY=SU,FR,SA;BYHOUR=0;BYMINUTE=0");
    CHECK(single_rule("0 0 * * */7") == "BYDAY=SU;BYHOUR=0;BYMINUTE=0");
}

TEST_CASE("cron_to_rrules makes two rules when both day fields restrict (a day matches either)") {
    CHECK(rules_of("0 12 13 * fri") ==
          std::vector<std::string>{"FREQ=DAILY;BYMONTHDAY=13;BYHOUR=12;BYMINUTE=0;BYSECOND=0",
                                   "FREQ=DAILY;BYDAY=FR;BYHOUR=12;BYMINUTE=0;BYSECOND=0"});
    CHECK(rules_of("0 0 1,15 6 mon") ==
          std::vector<std::string>{"FREQ=DAILY;BYMONTH=6;BYMONTHDAY=1,15;BYHOUR=0;BYMINUTE=0;BYSECOND=0",
                                   "FREQ=DAILY;BYMONTH=6;BYDAY=MO;BYHOUR=0;BYMINUTE=0;BYSECOND=0"});
}

TEST_CASE("cron_to_rrules lets only the other day field restrict when one is a star") {
    CHECK(single_rule("0 0 13 * *") == "BYMONTHDAY=13;BYHOUR=0;BYMINUTE=0");
    CHECK(single_rule("0 0 * * fri") == "BYDAY=FR;BYHOUR=0;BYMINUTE=0");
}

TEST_CASE("cron_to_rrules ANDs the day fields when one starts with a star, as Vixie cron does") {
    CHECK(single_rule("0 0 */2 * mon") == "BYMONTHDAY=1,3,5,7,9,11,13,15,17,19,21,23,25,27,29,31;BYDAY=MO;"
                                          "BYHOUR=0;BYMINUTE=0");
    CHECK(single_rule("0 0 13 * */5") == "BYMONTHDAY=13;BYDAY=SU,FR;BYHOUR=0;BYMINUTE=0");
}

TEST_CASE("cron_to_rrules makes one unrestricted rule when an OR-ed day field covers every day") {
    CHECK(single_rule("0 0 1-31 * mon") == "BYHOUR=0;BYMINUTE=0");
    CHECK(single_rule("0 0 13 * 0-6") == "BYHOUR=0;BYMINUTE=0");
}

TEST_CASE("cron_to_rrules expands every alias to its five fields") {
    CHECK(rules_of("@yearly") == rules_of("0 0 1 1 *"));
    CHECK(rules_of("@annually") == rules_of("0 0 1 1 *"));
    CHECK(rules_of("@monthly") == rules_of("0 0 1 * *"));
    CHECK(rules_of("@weekly") == rules_of("0 0 * * 0"));
    CHECK(rules_of("@daily") == rules_of("0 0 * * *"));
    CHECK(rules_of("@midnight") == rules_of("0 0 * * *"));
    CHECK(rules_of("@hourly") == rules_of("0 * * * *"));
    CHECK(single_rule("  @weekly\t") == "BYDAY=SU;BYHOUR=0;BYMINUTE=0");
}

TEST_CASE("cron_to_rrules accepts any whitespace between fields") {
    CHECK(rules_of("  0\t12 \t * *   1 ") == rules_of("0 12 * * 1"));
}

TEST_CASE("cron_to_rrules accepts Feb 29, which leap years reach") {
    CHECK(single_rule("0 0 29 2 *") == "BYMONTH=2;BYMONTHDAY=29;BYHOUR=0;BYMINUTE=0");
}

TEST_CASE("cron_to_rrules refuses a day of month that no selected month has") {
    CHECK(error_of("0 0 30 2 *") ==
          "cron: day-of-month '30' never occurs in month '2', so the schedule never fires");
    CHECK(error_of("0 0 31 4,6 *") ==
          "cron: day-of-month '31' never occurs in month '4,6', so the schedule never fires");
    CHECK(error_of("0 0 30,31 feb */2") ==
          "cron: day-of-month '30,31' never occurs in month 'feb', so the schedule never fires");
}

TEST_CASE("cron_to_rrules keeps only the weekday rule when the OR-ed day of month never occurs") {
    CHECK(single_rule("0 0 30 2 mon") == "BYMONTH=2;BYDAY=MO;BYHOUR=0;BYMINUTE=0");
}

TEST_CASE("cron_to_rrules names the field and the text of an out-of-range value") {
    CHECK(error_of("60 * * * *") == "cron field 'minute': 60 is out of range 0-59");
    CHECK(error_of("0 25 * * *") == "cron field 'hour': 25 is out of range 0-23");
    CHECK(error_of("0 0 0 * *") == "cron field 'day-of-month': 0 is out of range 1-31");
    CHECK(error_of("0 0 32 * *") == "cron field 'day-of-month': 32 is out of range 1-31");
    CHECK(error_of("0 0 * 13 *") == "cron field 'month': 13 is out of range 1-12");
    CHECK(error_of("0 0 * * 8") == "cron field 'day-of-week': 8 is out of range 0-7");
    CHECK(error_of("0 0-24 * * *") == "cron field 'hour': 24 is out of range 0-23");
    CHECK(error_of("99999999999 * * * *") == "cron field 'minute': 99999999999 is out of range 0-59");
}

TEST_CASE("cron_to_rrules reports unknown names and names where numbers belong") {
    CHECK(error_of("0 0 * * fry") == "cron field 'day-of-week': unknown name 'fry'");
    CHECK(error_of("0 0 * * mon-sunday") == "cron field 'day-of-week': unknown name 'sunday'");
    CHECK(error_of("0 0 * janu *") == "cron field 'month': unknown name 'janu'");
    CHECK(error_of("x * * * *") == "cron field 'minute': expected a number, got 'x'");
    CHECK(error_of("0 0 mon * *") == "cron field 'day-of-month': expected a number, got 'mon'");
    CHECK(error_of("0 0 * 1x *") == "cron field 'month': expected a number or a name, got '1x'");
    CHECK(error_of("*-5 * * * *") == "cron field 'minute': expected a number, got '*'");
}

TEST_CASE("cron_to_rrules reports bad steps, bad or backwards ranges and empty list items") {
    CHECK(error_of("*/0 * * * *") == "cron field 'minute': step 0 in '*/0'");
    CHECK(error_of("0 1-5/0 * * *") == "cron field 'hour': step 0 in '1-5/0'");
    CHECK(error_of("*/x * * * *") == "cron field 'minute': bad step 'x' in '*/x'");
    CHECK(error_of("*/ * * * *") == "cron field 'minute': bad step '' in '*/'");
    CHECK(error_of("*/2/3 * * * *") == "cron field 'minute': bad step '2/3' in '*/2/3'");
    CHECK(error_of("0 17-9 * * *") == "cron field 'hour': range '17-9' runs backwards");
    CHECK(error_of("0 0 * * fri-mon") == "cron field 'day-of-week': range 'fri-mon' runs backwards");
    CHECK(error_of("0 0 * * fri-sun") ==
          "cron field 'day-of-week': range 'fri-sun' runs backwards (Sunday can end a range as 7)");
    CHECK(single_rule("0 0 * * fri-7") == "BYDAY=SU,FR,SA;BYHOUR=0;BYMINUTE=0");
    CHECK(error_of("-5 * * * *") == "cron field 'minute': bad range '-5'");
    CHECK(error_of("0 3- * * *") == "cron field 'hour': bad range '3-'");
    CHECK(error_of("1-2-3 * * * *") == "cron field 'minute': bad range '1-2-3'");
    CHECK(error_of("1,,2 * * * *") == "cron field 'minute': empty list item in '1,,2'");
    CHECK(error_of("0 1, * * *") == "cron field 'hour': empty list item in '1,'");
}

TEST_CASE("cron_to_rrules counts the fields it was given") {
    CHECK(error_of("* * * *") ==
          "cron: expected 5 fields (minute hour day-of-month month day-of-week), got 4");
    CHECK(error_of("0 0 * * * /bin/true") ==
          "cron: expected 5 fields (minute hour day-of-month month day-of-week), got 6");
    CHECK(error_of("   ") == "cron: expected 5 fields (minute hour day-of-month month day-of-week), got 0");
}

TEST_CASE("cron_to_rrules refuses @reboot, unknown aliases and text after an alias") {
    CHECK(error_of("@reboot") ==
          "cron: @reboot is not a schedule (cron runs it once at boot, at no time of day)");
    CHECK(error_of("@weakly") ==
          "cron: unknown alias '@weakly' (expected @yearly, @annually, @monthly, @weekly, "
          "@daily, @midnight or @hourly)");
    CHECK(error_of("@Daily").starts_with("cron: unknown alias '@Daily'"));
    CHECK(error_of("@daily 0") == "cron: nothing may follow the alias '@daily'");
}

TEST_CASE("libical parses every rule cron_to_rrules produces") {
    for (const char* expr : {"* * * * *", "*/15 9-17 * * mon-fri", "30 4 1,15 jan,jul */2", "0 12 13 * fri",
                             "0 0 29 2 *", "0 0 30 2 mon", "5/100 */6 28/2 */3 5-7", "@yearly", "@hourly"}) {
        for (const std::string& text : rules_of(expr)) {
            INFO(expr, " -> ", text);
            icalrecurrencetype rule = ical().recurrencetype_from_string(text.c_str());
            CHECK(rule.freq == ICAL_DAILY_RECURRENCE);
        }
    }
}

TEST_CASE("libical's expansion of the rules fires on exactly the minutes cron would") {
    check_expansion("*/15 9-17 * * mon-fri", [](const Minute& m) {
        return m.minute % 15 == 0 && m.hour >= 9 && m.hour <= 17 && m.weekday >= 1 && m.weekday <= 5;
    });
    check_expansion("* * * * *", [](const Minute&) { return true; });
    check_expansion("10-30/10 */6 * feb *", [](const Minute& m) {
        return (m.minute == 10 || m.minute == 20 || m.minute == 30) && m.hour % 6 == 0 && m.month == 2;
    });
    // The OR rule: the 13th of each month, and every Friday.
    check_expansion("0 12 13 * fri", [](const Minute& m) {
        return m.minute == 0 && m.hour == 12 && (m.day == 13 || m.weekday == 5);
    });
    // A leading star ANDs them: odd days that are Mondays.
    check_expansion("0 0 */2 * mon", [](const Minute& m) {
        return m.minute == 0 && m.hour == 0 && m.day % 2 == 1 && m.weekday == 1;
    });
    check_expansion("0 8 * * 7",
                    [](const Minute& m) { return m.minute == 0 && m.hour == 8 && m.weekday == 0; });
    check_expansion("0 0 31 * *",
                    [](const Minute& m) { return m.minute == 0 && m.hour == 0 && m.day == 31; });
    check_expansion("30 1 30 2 sat", [](const Minute& m) {
        return m.minute == 30 && m.hour == 1 && m.month == 2 && m.weekday == 6;
    });
    check_expansion("@weekly",
                    [](const Minute& m) { return m.minute == 0 && m.hour == 0 && m.weekday == 0; });
    check_expansion("@monthly", [](const Minute& m) { return m.minute == 0 && m.hour == 0 && m.day == 1; });
    check_expansion("@hourly", [](const Minute& m) { return m.minute == 0; });
    // 2028 is a leap year; 2026 has no Feb 29 at all.
    check_expansion(
        "0 0 29 2 *",
        [](const Minute& m) { return m.minute == 0 && m.hour == 0 && m.month == 2 && m.day == 29; }, 2028);
    check_expansion("0 0 29 2 *", [](const Minute&) { return false; });
}
