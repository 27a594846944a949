#include "daemon/tz/zone.hpp"

#include "common/time_format.hpp"

#include <libical/ical.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <unistd.h>

namespace luaflow::tz {

namespace {

// Howard Hinnant's days_from_civil / civil_from_days: proleptic Gregorian calendar arithmetic.
std::int64_t days_from_civil(int y, int m, int d) {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + static_cast<unsigned>(d) - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

icaltimetype utc_icaltime(UnixSeconds t) {
    return icaltime_from_timet_with_zone(static_cast<time_t>(t), 0, icaltimezone_get_utc_timezone());
}

std::string zone_name_from_link() {
    char buf[PATH_MAX];
    ssize_t n = ::readlink("/etc/localtime", buf, sizeof buf - 1);
    if (n <= 0) return "";
    std::string target(buf, static_cast<size_t>(n));
    auto at = target.find("zoneinfo/");
    return at == std::string::npos ? "" : target.substr(at + 9);
}

} // namespace

std::int64_t naive_seconds(const LocalTime& t) {
    return days_from_civil(t.year, t.month, t.day) * 86400 + t.hour * 3600 + t.minute * 60 + t.second;
}

LocalTime from_naive_seconds(std::int64_t s) {
    std::int64_t days = s >= 0 ? s / 86400 : -((-s + 86399) / 86400);
    std::int64_t secs = s - days * 86400;
    std::int64_t z = days + 719468;
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    LocalTime t;
    t.day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
    t.month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
    t.year = static_cast<int>(static_cast<std::int64_t>(yoe) + era * 400 + (t.month <= 2));
    t.hour = static_cast<int>(secs / 3600);
    t.minute = static_cast<int>(secs / 60 % 60);
    t.second = static_cast<int>(secs % 60);
    return t;
}

std::string format_local_time(const LocalTime& t) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", t.year, t.month, t.day, t.hour, t.minute,
                  t.second);
    return buf;
}

bool parse_local_time(const std::string& text, LocalTime& out) {
    LocalTime t;
    int consumed = 0;
    int n = std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d%n:%2d%n", &t.year, &t.month, &t.day, &t.hour,
                        &t.minute, &consumed, &t.second, &consumed);
    if (n < 5 || static_cast<size_t>(consumed) != text.size()) return false;
    if (t.month < 1 || t.month > 12 || t.day < 1 || t.hour > 23 || t.minute > 59 || t.second > 59)
        return false;
    if (t.day > icaltime_days_in_month(t.month, t.year)) return false;
    out = t;
    return true;
}

Zone::Zone() : tz_(icaltimezone_get_utc_timezone()), name_("UTC") {}

Result<Zone> Zone::find(const std::string& name) {
    if (name == "UTC" || name == "Etc/UTC" || name == "Z")
        return Zone(icaltimezone_get_utc_timezone(), "UTC");
    icaltimezone* tz = name.empty() ? nullptr : icaltimezone_get_builtin_timezone(name.c_str());
    if (!tz)
        return make_error(ErrorCode::invalid,
                          "unknown time zone '" + name + "' (expected an IANA name such as Europe/Berlin)");
    return Zone(tz, name);
}

Zone Zone::system() {
    std::string name;
    if (const char* tz = std::getenv("TZ"); tz && *tz) name = tz[0] == ':' ? tz + 1 : tz;
    if (name.empty()) name = zone_name_from_link();
    if (name.empty()) {
        std::ifstream in("/etc/timezone");
        std::getline(in, name);
    }
    if (auto z = Zone::find(name)) return z.value();
    return Zone(icaltimezone_get_utc_timezone(), "UTC");
}

int Zone::offset_at(UnixSeconds t) const {
    icaltimetype tt = utc_icaltime(t);
    int is_daylight = 0;
    return icaltimezone_get_utc_offset_of_utc_time(tz_, &tt, &is_daylight);
}

LocalTime Zone::local(UnixSeconds t) const {
    return from_naive_seconds(t + offset_at(t));
}

UnixSeconds Zone::instant(const LocalTime& t) const {
    const std::int64_t naive = naive_seconds(t);
    // The offsets in force a day before and a day after: a transition between them makes a gap or an
    // overlap at t; zones never change twice within two days.
    const int before = offset_at(naive - 86400);
    const int after = offset_at(naive + 86400);
    const UnixSeconds first = naive - before, second = naive - after;
    const bool first_ok = offset_at(first) == before, second_ok = offset_at(second) == after;
    if (first_ok && second_ok) return std::min(first, second); // ambiguous: the first instant
    if (first_ok) return first;
    if (second_ok) return second;
    return first; // in the gap: read with the offset before it
}

bool Zone::steady_around(UnixSeconds t, std::int64_t window) const {
    const int at = offset_at(t);
    return offset_at(t - window) == at && offset_at(t + window) == at;
}

std::string format_in_zone(UnixSeconds t, const Zone& zone) {
    const int off = zone.offset_at(t);
    const LocalTime l = from_naive_seconds(t + off);
    const int a = off < 0 ? -off : off;
    char buf[40];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", l.year, l.month, l.day, l.hour,
                  l.minute, l.second, off < 0 ? '-' : '+', a / 3600, a / 60 % 60);
    return buf;
}

std::string format_scheduled(std::int64_t unix_ms, const std::optional<std::string>& zone) {
    if (zone && unix_ms % 1000 == 0)
        if (auto z = Zone::find(*zone)) return format_in_zone(unix_ms / 1000, z.value());
    return format_rfc3339(unix_ms);
}

} // namespace luaflow::tz
