#include "daemon/schedule/calendar_days.hpp"

#include "daemon/tz/ical_api.hpp"

#include <algorithm>
#include <chrono>
#include <vector>

namespace luaflow::schedule {

namespace {

// The values of a libical BY array, up to its end marker.
std::vector<int> values(const short* by, int size) {
    std::vector<int> out;
    for (int i = 0; i < size && by[i] != ICAL_RECURRENCE_ARRAY_MAX; ++i)
        out.push_back(by[i]);
    return out;
}

// What the checks need to know of one day of one kind of year.
struct Day {
    int month, month_day, month_length;
    int year_day, year_length;
    int weekday;             // 1 = SU ... 7 = SA, as libical numbers them
    int week = 0, weeks = 0; // ISO week (WKST=MO) and the weeks of its ISO year; 0: 52 or 53
};

bool in(const std::vector<int>& list, int positive, int negative) {
    for (int v : list)
        if (v == positive || v == negative) return true;
    return false;
}

struct Parts {
    std::vector<int> months, month_days, year_days, weeks, by_day;
    bool weeks_known = true; // BYWEEKNO counts ISO weeks (WKST=MO)
    icalrecurrencetype_frequency freq;
};

bool by_day_matches(const Parts& p, const Day& d) {
    if (p.by_day.empty()) return true;
    for (int code : p.by_day) {
        const int weekday = tz::ical().recurrencetype_day_day_of_week(static_cast<short>(code));
        if (weekday != d.weekday) continue;
        const int pos = tz::ical().recurrencetype_day_position(static_cast<short>(code));
        if (pos == 0) return true;
        // RFC 5545 3.3.10: the n-th such weekday of the month (FREQ=MONTHLY, or YEARLY with BYMONTH), or
        // of the year (YEARLY otherwise); elsewhere the position has no meaning to check.
        if (p.freq == ICAL_MONTHLY_RECURRENCE || (p.freq == ICAL_YEARLY_RECURRENCE && !p.months.empty())) {
            if (pos == (d.month_day - 1) / 7 + 1 || pos == -((d.month_length - d.month_day) / 7 + 1))
                return true;
        } else if (p.freq == ICAL_YEARLY_RECURRENCE && p.weeks.empty()) {
            if (pos == (d.year_day - 1) / 7 + 1 || pos == -((d.year_length - d.year_day) / 7 + 1))
                return true;
        } else {
            return true;
        }
    }
    return false;
}

bool matches(const Parts& p, const Day& d) {
    if (!p.months.empty() && !in(p.months, d.month, d.month)) return false;
    if (!p.month_days.empty() && !in(p.month_days, d.month_day, d.month_day - d.month_length - 1))
        return false;
    if (!p.year_days.empty() && !in(p.year_days, d.year_day, d.year_day - d.year_length - 1)) return false;
    if (!p.weeks.empty() && p.weeks_known) {
        // A week that belongs to the neighbouring ISO year has 52 or 53 weeks: either may match.
        bool found = false;
        for (int weeks : {52, 53}) {
            const int n = d.weeks ? d.weeks : weeks;
            if (in(p.weeks, d.week > 0 ? d.week : n, (d.week > 0 ? d.week : n) - n - 1)) found = true;
        }
        if (!found) return false;
    }
    return by_day_matches(p, d);
}

int iso_weeks(int jan1_weekday_mon0, bool leap) { // Monday = 0
    return jan1_weekday_mon0 == 3 || (leap && jan1_weekday_mon0 == 2) ? 53 : 52;
}

// 0 = SU ... 6 = SA.
unsigned weekday_of(std::chrono::sys_days date) {
    return std::chrono::weekday{date}.c_encoding();
}

std::string join(const std::string& a, const std::string& b) {
    return a.empty() ? b : a + " and " + b;
}

std::string list(const std::vector<int>& v) {
    std::string s;
    for (int x : v)
        s += (s.empty() ? "" : ",") + std::to_string(x);
    return s;
}

} // namespace

std::optional<std::string> days_never_matched(const icalrecurrencetype& rule) {
    Parts p;
    p.freq = rule.freq;
    p.months = values(rule.by_month, ICAL_BY_MONTH_SIZE);
    p.month_days = values(rule.by_month_day, ICAL_BY_MONTHDAY_SIZE);
    p.year_days = values(rule.by_year_day, ICAL_BY_YEARDAY_SIZE);
    p.weeks = values(rule.by_week_no, ICAL_BY_WEEKNO_SIZE);
    p.by_day = values(rule.by_day, ICAL_BY_DAY_SIZE);
    p.weeks_known = rule.week_start == ICAL_NO_WEEKDAY || rule.week_start == ICAL_MONDAY_WEEKDAY;
    if (p.months.empty() && p.month_days.empty() && p.year_days.empty() && p.weeks.empty())
        return std::nullopt;
    static constexpr int kMonthLength[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    for (bool leap : {false, true}) {
        const int year_length = leap ? 366 : 365;
        for (int jan1 = 0; jan1 < 7; ++jan1) { // Monday = 0
            const int weeks = iso_weeks(jan1, leap);
            int year_day = 0;
            for (int m = 1; m <= 12; ++m) {
                const int length = kMonthLength[m - 1] + (leap && m == 2 ? 1 : 0);
                for (int md = 1; md <= length; ++md) {
                    ++year_day;
                    Day d{m, md, length, year_day, year_length, 0};
                    const int mon0 = (jan1 + year_day - 1) % 7;
                    d.weekday = (mon0 + 1) % 7 + 1; // MO = 2 ... SU = 1
                    // ISO 8601: week 1 holds the year's first Thursday.
                    const int week = (year_day - (mon0 + 1) + 10) / 7;
                    if (week < 1) {
                        d.week = 0; // the previous ISO year's last week: 52 or 53
                    } else if (week > weeks) {
                        d.week = 1; // the next ISO year's first week: 52 or 53 of them
                    } else {
                        d.week = week;
                        d.weeks = weeks;
                    }
                    if (matches(p, d)) return std::nullopt;
                }
            }
        }
    }
    std::string parts;
    if (!p.months.empty()) parts = join(parts, "BYMONTH=" + list(p.months));
    if (!p.month_days.empty()) parts = join(parts, "BYMONTHDAY=" + list(p.month_days));
    if (!p.year_days.empty()) parts = join(parts, "BYYEARDAY=" + list(p.year_days));
    if (!p.weeks.empty()) parts = join(parts, "BYWEEKNO=" + list(p.weeks));
    if (!p.by_day.empty()) parts = join(parts, "its BYDAY");
    return "no day of any year is in " + parts;
}

std::optional<DayFilter> DayFilter::take(icalrecurrencetype& rule) {
    if (rule.freq != ICAL_SECONDLY_RECURRENCE && rule.freq != ICAL_MINUTELY_RECURRENCE &&
        rule.freq != ICAL_HOURLY_RECURRENCE)
        return std::nullopt;
    DayFilter f;
    f.months_ = values(rule.by_month, ICAL_BY_MONTH_SIZE);
    f.month_days_ = values(rule.by_month_day, ICAL_BY_MONTHDAY_SIZE);
    f.year_days_ = values(rule.by_year_day, ICAL_BY_YEARDAY_SIZE);
    for (int code : values(rule.by_day, ICAL_BY_DAY_SIZE))
        f.weekdays_.push_back(tz::ical().recurrencetype_day_day_of_week(static_cast<short>(code)));
    if (f.months_.empty() && f.month_days_.empty() && f.year_days_.empty() && f.weekdays_.empty())
        return std::nullopt;
    rule.by_month[0] = rule.by_month_day[0] = rule.by_year_day[0] = rule.by_day[0] =
        ICAL_RECURRENCE_ARRAY_MAX;
    return f;
}

bool DayFilter::matches(std::int64_t day) const {
    using namespace std::chrono;
    const sys_days date{days{day}};
    const year_month_day ymd{date};
    const int m = static_cast<int>(static_cast<unsigned>(ymd.month()));
    const int d = static_cast<int>(static_cast<unsigned>(ymd.day()));
    const int month_length = static_cast<int>(
        static_cast<unsigned>(year_month_day_last{ymd.year(), month_day_last{ymd.month()}}.day()));
    const int year_day = static_cast<int>((date - sys_days{ymd.year() / January / 1}).count()) + 1;
    const int year_length = ymd.year().is_leap() ? 366 : 365;
    const int weekday = static_cast<int>(weekday_of(date)) + 1;
    return (months_.empty() || in(months_, m, m)) &&
           (month_days_.empty() || in(month_days_, d, d - month_length - 1)) &&
           (year_days_.empty() || in(year_days_, year_day, year_day - year_length - 1)) &&
           (weekdays_.empty() || std::find(weekdays_.begin(), weekdays_.end(), weekday) != weekdays_.end());
}

std::optional<std::int64_t> DayFilter::next(std::int64_t day) const {
    constexpr std::int64_t kCycle = 146'097; // days in 400 Gregorian years
    for (std::int64_t d = day + 1; d <= day + kCycle; ++d)
        if (matches(d)) return d;
    return std::nullopt;
}

} // namespace luaflow::schedule
