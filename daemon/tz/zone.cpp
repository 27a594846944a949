#include "daemon/tz/zone.hpp"

#include "common/time_format.hpp"
#include "daemon/tz/ical_api.hpp"

#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <mutex>
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

bool is_utc_name(const std::string& name) {
    return name == "UTC" || name == "Etc/UTC" || name == "Z";
}

// "2026-11-22T10:00:00+01:00": t shown with a UTC offset of `off` seconds.
std::string format_with_offset(UnixSeconds t, int off) {
    const LocalTime l = from_naive_seconds(t + off);
    const int a = off < 0 ? -off : off;
    char buf[40];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", l.year, l.month, l.day, l.hour,
                  l.minute, l.second, off < 0 ? '-' : '+', a / 3600, a / 60 % 60);
    return buf;
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
    using namespace std::chrono;
    const year_month_day_last last{year{t.year}, month_day_last{month{static_cast<unsigned>(t.month)}}};
    if (t.day > static_cast<int>(static_cast<unsigned>(last.day()))) return false;
    out = t;
    return true;
}

std::string system_zone_name() {
    std::string name;
    if (const char* tz = std::getenv("TZ"); tz && *tz) name = tz[0] == ':' ? tz + 1 : tz;
    if (name.empty()) name = zone_name_from_link();
    if (name.empty()) {
        std::ifstream in("/etc/timezone");
        std::getline(in, name);
    }
    return name;
}

Result<Zone> Zone::find(const std::string& name) {
    if (is_utc_name(name)) return Zone();
    icaltimezone* tz = nullptr;
    if (!name.empty()) {
        auto api = ical_api();
        if (!api)
            return make_error(ErrorCode::unavailable, "time zone '" + name + "': " + api.error().message);
        // libical finds a built-in zone by a linear search of its ~400 names, a strcmp each (~1.5 us, for
        // every rule of every workflow): the zones found are kept by name, as libical keeps them.
        static std::mutex mutex;
        static std::map<std::string, icaltimezone*, std::less<>> found;
        std::lock_guard lock(mutex);
        if (auto it = found.find(name); it != found.end()) return Zone(it->second, name);
        tz = (*api)->timezone_get_builtin_timezone(name.c_str());
        if (tz) found.emplace(name, tz);
    }
    if (!tz)
        return make_error(ErrorCode::invalid,
                          "unknown time zone '" + name + "' (expected an IANA name such as Europe/Berlin)");
    return Zone(tz, name);
}

Zone Zone::system() {
    const std::string name = system_zone_name();
    if (name.empty()) return Zone();
    if (auto z = Zone::find(name)) return z.value();
    return Zone();
}

int Zone::offset_at(UnixSeconds t) const {
    if (!tz_) return 0; // UTC
    const IcalApi& ical = tz::ical();
    icaltimetype tt =
        ical.time_from_timet_with_zone(static_cast<time_t>(t), 0, ical.timezone_get_utc_timezone());
    int is_daylight = 0;
    return ical.timezone_get_utc_offset_of_utc_time(tz_, &tt, &is_daylight);
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
    return format_with_offset(t, zone.offset_at(t));
}

std::string format_scheduled(std::int64_t unix_ms, const std::optional<std::string>& zone) {
    if (!zone || unix_ms % 1000 != 0) return format_rfc3339(unix_ms);
    const UnixSeconds t = unix_ms / 1000;
    if (is_utc_name(*zone)) return format_with_offset(t, 0);
    // The process's own zone is the C library's too (both read $TZ, else /etc/localtime): its offset
    // comes from localtime_r, as every other time's, and a daemon whose rules use it loads no libical to
    // show their runs. Read once: the daemon's zone does not change under it.
    static const std::string own = system_zone_name();
    if (*zone == own) {
        const std::time_t secs = static_cast<std::time_t>(t);
        std::tm tm{};
        localtime_r(&secs, &tm);
        return format_with_offset(t, static_cast<int>(tm.tm_gmtoff));
    }
    if (auto z = Zone::find(*zone)) return format_in_zone(t, z.value());
    return format_rfc3339(unix_ms);
}

} // namespace luaflow::tz
