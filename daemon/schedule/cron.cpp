// Cron schedules are translated into RRULEs rather than matched minute by minute, so that every schedule
// goes through one expansion engine (libical) and gets the same DST, horizon and catch-up rules as an
// `rrule` schedule. Each cron field is a set of values, which is exactly what a FREQ=DAILY rule's BY*
// lists express; only cron's "day-of-month OR day-of-week" rule needs a second RRULE for the union.
#include "daemon/schedule/cron.hpp"

#include <array>
#include <bitset>
#include <cctype>
#include <charconv>
#include <span>

namespace luaflow::schedule {
namespace {

using Set = std::bitset<60>; // value v is bit v; minutes (0-59) are the widest field

struct Field {
    std::string_view name;
    int min;
    int max;
    std::span<const std::string_view> names; // names[i] spells the value min + i
};

constexpr std::string_view kMonthNames[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                            "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::string_view kDayNames[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
constexpr std::string_view kByDay[] = {"SU", "MO", "TU", "WE", "TH", "FR", "SA"};
// Feb counts 29: the rule still fires in leap years.
constexpr int kDaysInMonth[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

enum FieldIndex { kMinute, kHour, kDayOfMonth, kMonth, kDayOfWeek };
// Day of week runs 0-7 as in cron(5): 0 and 7 are both Sunday (7 is folded into 0 after parsing).
const Field kFields[5] = {{"minute", 0, 59, {}},
                          {"hour", 0, 23, {}},
                          {"day-of-month", 1, 31, {}},
                          {"month", 1, 12, kMonthNames},
                          {"day-of-week", 0, 7, kDayNames}};

// Vixie cron compares aliases with strcmp, so they are case-sensitive there and here.
struct Alias {
    std::string_view name;
    std::string_view fields;
};
constexpr Alias kAliases[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"}, {"@weekly", "0 0 * * 0"},
    {"@daily", "0 0 * * *"},  {"@midnight", "0 0 * * *"}, {"@hourly", "0 * * * *"}};

Error invalid(std::string message) {
    return make_error(ErrorCode::invalid, std::move(message));
}

Error field_error(const Field& f, std::string_view what) {
    return invalid("cron field '" + std::string(f.name) + "': " + std::string(what));
}

std::string quoted(std::string_view s) {
    return "'" + std::string(s) + "'";
}

template <class Pred> bool all_of(std::string_view s, Pred pred) {
    if (s.empty()) return false;
    for (char c : s)
        if (!pred(static_cast<unsigned char>(c))) return false;
    return true;
}
bool is_digit(unsigned char c) {
    return c >= '0' && c <= '9';
}
bool is_alpha(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// Digits only, as cron reads them (no sign); a value too long for int is clamped, never wrapped.
int to_int(std::string_view digits) {
    if (digits.size() > 9) return 1'000'000'000;
    int v = 0;
    std::from_chars(digits.data(), digits.data() + digits.size(), v);
    return v;
}

// A number, or where the field has them a three-letter name in any case ("Mon", "JAN").
Result<int> parse_value(const Field& f, std::string_view text) {
    if (all_of(text, is_digit)) {
        int v = to_int(text);
        if (v < f.min || v > f.max)
            return field_error(f, std::string(text) + " is out of range " + std::to_string(f.min) + "-" +
                                      std::to_string(f.max));
        return v;
    }
    if (!f.names.empty() && all_of(text, is_alpha)) {
        std::string lower(text);
        for (char& c : lower)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        for (std::size_t i = 0; i < f.names.size(); ++i)
            if (f.names[i] == lower) return f.min + static_cast<int>(i);
        return field_error(f, "unknown name " + quoted(text));
    }
    return field_error(f,
                       (f.names.empty() ? "expected a number, got " : "expected a number or a name, got ") +
                           quoted(text));
}

// One list item: "*", "a", "a-b", each optionally followed by "/step"; "a/step" runs from a to the max.
Result<void> parse_item(const Field& f, std::string_view item, Set& set) {
    std::string_view base = item;
    int step = 1;
    bool stepped = false;
    if (auto slash = item.find('/'); slash != std::string_view::npos) {
        base = item.substr(0, slash);
        std::string_view step_text = item.substr(slash + 1);
        if (!all_of(step_text, is_digit))
            return field_error(f, "bad step " + quoted(step_text) + " in " + quoted(item));
        step = to_int(step_text);
        if (step == 0) return field_error(f, "step 0 in " + quoted(item));
        stepped = true;
    }
    int lo, hi;
    if (base == "*") {
        lo = f.min;
        hi = f.max;
    } else if (auto dash = base.find('-'); dash != std::string_view::npos) {
        if (dash == 0 || dash + 1 == base.size() || base.find('-', dash + 1) != std::string_view::npos)
            return field_error(f, "bad range " + quoted(base));
        auto first = parse_value(f, base.substr(0, dash));
        if (!first) return first.error();
        auto last = parse_value(f, base.substr(dash + 1));
        if (!last) return last.error();
        lo = *first;
        hi = *last;
        // Vixie cron has no wrap-around ranges; "fri-sun" is 5-0, so point at 7.
        if (lo > hi)
            return field_error(f, "range " + quoted(base) + " runs backwards" +
                                      (f.max == 7 && hi == 0 ? " (Sunday can end a range as 7)" : ""));
    } else {
        auto value = parse_value(f, base);
        if (!value) return value.error();
        lo = *value;
        hi = stepped ? f.max : lo;
    }
    for (int v = lo; v <= hi; v += step)
        set.set(static_cast<std::size_t>(v));
    return {};
}

Result<Set> parse_field(const Field& f, std::string_view text) {
    Set set;
    std::size_t start = 0;
    for (;;) {
        std::size_t comma = text.find(',', start);
        std::string_view item = text.substr(start, comma == std::string_view::npos ? comma : comma - start);
        if (item.empty()) return field_error(f, "empty list item in " + quoted(text));
        if (auto r = parse_item(f, item, set); !r) return r.error();
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    return set;
}

std::vector<std::string_view> split_fields(std::string_view expr) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < expr.size()) {
        while (i < expr.size() && std::isspace(static_cast<unsigned char>(expr[i])))
            ++i;
        std::size_t start = i;
        while (i < expr.size() && !std::isspace(static_cast<unsigned char>(expr[i])))
            ++i;
        if (i > start) out.push_back(expr.substr(start, i - start));
    }
    return out;
}

bool covers(const Set& set, int lo, int hi) {
    for (int v = lo; v <= hi; ++v)
        if (!set.test(static_cast<std::size_t>(v))) return false;
    return true;
}

std::string join(const Set& set, int lo, int hi) {
    std::string out;
    for (int v = lo; v <= hi; ++v) {
        if (!set.test(static_cast<std::size_t>(v))) continue;
        if (!out.empty()) out += ',';
        out += std::to_string(v);
    }
    return out;
}

// Some selected day of month exists in some selected month (Feb 29 counts: leap years come).
bool day_exists(const Set& days, const Set& months) {
    for (int m = 1; m <= 12; ++m)
        for (int d = 1; d <= kDaysInMonth[m]; ++d)
            if (months.test(static_cast<std::size_t>(m)) && days.test(static_cast<std::size_t>(d)))
                return true;
    return false;
}

struct Sets {
    Set minutes, hours, days, months, weekdays;
};

// One FREQ=DAILY rule; a BY part appears only when it restricts. RFC 5545 (3.3.10): for DAILY, BYMONTH,
// BYMONTHDAY and BYDAY limit the days, and BYHOUR, BYMINUTE and BYSECOND expand each day into its times.
std::string daily_rule(const Sets& s, bool by_day_of_month, bool by_day_of_week) {
    std::string rule = "FREQ=DAILY";
    if (!covers(s.months, 1, 12)) rule += ";BYMONTH=" + join(s.months, 1, 12);
    if (by_day_of_month && !covers(s.days, 1, 31)) rule += ";BYMONTHDAY=" + join(s.days, 1, 31);
    if (by_day_of_week && !covers(s.weekdays, 0, 6)) {
        std::string names;
        for (int d = 0; d <= 6; ++d)
            if (s.weekdays.test(static_cast<std::size_t>(d)))
                names += (names.empty() ? "" : ",") + std::string(kByDay[d]);
        rule += ";BYDAY=" + names;
    }
    rule += ";BYHOUR=" + join(s.hours, 0, 23) + ";BYMINUTE=" + join(s.minutes, 0, 59) + ";BYSECOND=0";
    return rule;
}

} // namespace

Result<std::vector<std::string>> cron_to_rrules(std::string_view expr) {
    std::vector<std::string_view> fields = split_fields(expr);
    if (!fields.empty() && fields[0].starts_with('@')) {
        std::string_view alias = fields[0];
        if (alias == "@reboot")
            return invalid("cron: @reboot is not a schedule (cron runs it once at boot, at no time of day)");
        if (fields.size() > 1) return invalid("cron: nothing may follow the alias " + quoted(alias));
        const Alias* found = nullptr;
        for (const Alias& a : kAliases)
            if (a.name == alias) found = &a;
        if (!found)
            return invalid("cron: unknown alias " + quoted(alias) +
                           " (expected @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly)");
        fields = split_fields(found->fields);
    }
    if (fields.size() != 5)
        return invalid("cron: expected 5 fields (minute hour day-of-month month day-of-week), got " +
                       std::to_string(fields.size()));

    std::array<Set, 5> sets;
    for (int i = 0; i < 5; ++i) {
        auto set = parse_field(kFields[i], fields[i]);
        if (!set) return set.error();
        sets[i] = *set;
    }
    Sets s{sets[kMinute], sets[kHour], sets[kDayOfMonth], sets[kMonth], sets[kDayOfWeek]};
    if (s.weekdays.test(7)) {
        s.weekdays.reset(7);
        s.weekdays.set(0);
    }

    // cron(5): when both day fields are restricted, a day matches if EITHER matches. Vixie cron decides
    // "restricted" by the field's first character, so "*/2" counts as unrestricted: the fields are ANDed.
    bool dom_star = fields[kDayOfMonth].starts_with('*');
    bool dow_star = fields[kDayOfWeek].starts_with('*');
    if (dom_star || dow_star) {
        if (!day_exists(s.days, s.months))
            return invalid("cron: day-of-month " + quoted(fields[kDayOfMonth]) + " never occurs in month " +
                           quoted(fields[kMonth]) + ", so the schedule never fires");
        return std::vector<std::string>{daily_rule(s, true, true)};
    }
    // Either side covering every day makes the union every day: one rule with no day restriction.
    if (covers(s.days, 1, 31) || covers(s.weekdays, 0, 6))
        return std::vector<std::string>{daily_rule(s, false, false)};
    std::vector<std::string> rules;
    // Every month has every weekday, so the BYDAY rule always fires; a BYMONTHDAY rule that never can
    // would only send libical searching years ahead for nothing, so it is left out.
    if (day_exists(s.days, s.months)) rules.push_back(daily_rule(s, true, false));
    rules.push_back(daily_rule(s, false, true));
    return rules;
}

} // namespace luaflow::schedule
