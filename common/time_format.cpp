#include "common/time_format.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

namespace luaflow {

namespace {
// Read from the thread pool's threads too (log lines); 0 outside test runs.
std::atomic<std::int64_t> clock_shift_ms{0};
// localtime_r of one second, kept per thread: the times of one report (created, started, each action's
// start and end) mostly fall in the same second, and localtime_r takes glibc's time zone lock and walks the
// zone's rules each time (half of what writing a lone execution's report cost). Keyed by the TZ variable
// too: glibc's localtime_r itself follows a change of TZ only once tzset() runs, which the tests of other
// zones do after setting it.
const std::tm& local_time(std::time_t secs) {
    struct Cached {
        bool valid = false;
        std::time_t secs = 0;
        std::string tz;
        bool tz_set = false;
        std::tm tm{};
    };
    thread_local Cached cached;
    const char* tz = std::getenv("TZ");
    if (!cached.valid || cached.secs != secs || cached.tz_set != (tz != nullptr) || (tz && cached.tz != tz)) {
        cached.tm = std::tm{};
        localtime_r(&secs, &cached.tm);
        cached.secs = secs;
        cached.tz_set = tz != nullptr;
        cached.tz = tz ? tz : "";
        cached.valid = true;
    }
    return cached.tm;
}

} // namespace

UnixMillis now_unix_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count() +
           clock_shift_ms.load(std::memory_order_relaxed);
}

void shift_clock(std::int64_t by_ms) {
    clock_shift_ms.fetch_add(by_ms, std::memory_order_relaxed);
}

std::int64_t clock_shift() {
    return clock_shift_ms.load(std::memory_order_relaxed);
}

std::string format_rfc3339(UnixMillis t) {
    std::time_t secs = static_cast<std::time_t>(t / 1000);
    int ms = static_cast<int>(t % 1000);
    if (ms < 0) {
        ms += 1000;
        --secs;
    }
    const std::tm& tm = local_time(secs);
    long off = tm.tm_gmtoff / 60;
    char sign = off < 0 ? '-' : '+';
    if (off < 0) off = -off;
    // YYYY-MM-DDTHH:MM:SS.mmm+HH:MM, digit by digit: snprintf was most of an inspect of 10 000 actions.
    char buf[29];
    auto digits = [&buf](int at, long v, int n) {
        for (int k = n - 1; k >= 0; --k, v /= 10)
            buf[at + k] = static_cast<char>('0' + v % 10);
    };
    const long year = tm.tm_year + 1900L;
    if (year < 0 || year > 9999) { // not 4 digits: as printf("%04d") has it
        char wide[64];
        std::snprintf(wide, sizeof wide, "%04ld-%02d-%02dT%02d:%02d:%02d.%03d%c%02ld:%02ld", year,
                      tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms, sign, off / 60,
                      off % 60);
        return wide;
    }
    digits(0, year, 4);
    buf[4] = '-';
    digits(5, tm.tm_mon + 1, 2);
    buf[7] = '-';
    digits(8, tm.tm_mday, 2);
    buf[10] = 'T';
    digits(11, tm.tm_hour, 2);
    buf[13] = ':';
    digits(14, tm.tm_min, 2);
    buf[16] = ':';
    digits(17, tm.tm_sec, 2);
    buf[19] = '.';
    digits(20, ms, 3);
    buf[23] = sign;
    digits(24, off / 60 % 100, 2);
    buf[26] = ':';
    digits(27, off % 60, 2);
    return std::string(buf, sizeof buf);
}

std::optional<UnixMillis> parse_rfc3339(std::string_view text) {
    std::string s(text);
    int y, mo, d, h, mi, sec, consumed = 0;
    if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &consumed) != 6 ||
        consumed != 19)
        return std::nullopt;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return std::nullopt;
    std::string_view rest = std::string_view(s).substr(19);
    int ms = 0;
    if (!rest.empty() && rest[0] == '.') {
        size_t i = 1;
        int digits = 0;
        while (i < rest.size() && rest[i] >= '0' && rest[i] <= '9') {
            if (digits < 3) ms = ms * 10 + (rest[i] - '0');
            ++digits;
            ++i;
        }
        if (digits == 0) return std::nullopt;
        for (int k = digits; k < 3; ++k)
            ms *= 10;
        rest = rest.substr(i);
    }
    std::tm tm{};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    std::time_t secs;
    if (rest.empty()) {
        tm.tm_isdst = -1;
        secs = std::mktime(&tm);
    } else if (rest == "Z" || rest == "z") {
        secs = timegm(&tm);
    } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
        int oh = (rest[1] - '0') * 10 + (rest[2] - '0');
        int om = (rest[4] - '0') * 10 + (rest[5] - '0');
        if (oh > 23 || om > 59) return std::nullopt;
        int off = (oh * 60 + om) * 60;
        secs = timegm(&tm) - (rest[0] == '+' ? off : -off);
    } else {
        return std::nullopt;
    }
    return static_cast<UnixMillis>(secs) * 1000 + ms;
}

} // namespace luaflow
