#include "common/time_format.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>

using namespace luaflow;

namespace {
struct ZoneGuard {
    explicit ZoneGuard(const char* tz) {
        const char* old = std::getenv("TZ");
        had_ = old != nullptr;
        if (had_) old_ = old;
        setenv("TZ", tz, 1);
        tzset();
    }
    ~ZoneGuard() {
        if (had_)
            setenv("TZ", old_.c_str(), 1);
        else
            unsetenv("TZ");
        tzset();
    }
    bool had_;
    std::string old_;
};
} // namespace

TEST_CASE("RFC 3339 with the local offset, round trip") {
    ZoneGuard tz("Europe/Berlin");
    // 2026-11-22T09:00:00Z is 10:00 in Berlin (CET, +01:00).
    UnixMillis t = 1'795'338'000'000;
    CHECK(format_rfc3339(t) == "2026-11-22T10:00:00.000+01:00");
    CHECK(parse_rfc3339("2026-11-22T10:00:00.000+01:00") == t);
    CHECK(parse_rfc3339("2026-11-22T09:00:00Z") == t);
    CHECK(parse_rfc3339("2026-11-22T10:00:00") == t); // local time read in the zone
    CHECK(parse_rfc3339("2026-11-22T09:00:00.5Z") == t + 500);
    // Summer time gives +02:00.
    CHECK(format_rfc3339(1'782'900'000'000).substr(23) == "+02:00");
}

TEST_CASE("format_rfc3339 writes every field and offset as printf would") {
    for (const char* zone :
         {"UTC", "Asia/Kathmandu", "America/St_Johns", "Pacific/Kiritimati", "America/Sao_Paulo"}) {
        ZoneGuard tz(zone);
        for (UnixMillis t : {UnixMillis{0}, UnixMillis{1'795'338'000'001}, UnixMillis{1'782'900'123'456},
                             UnixMillis{-1}, UnixMillis{-86'400'123}, UnixMillis{253'402'300'799'999}}) {
            std::time_t secs = static_cast<std::time_t>(t / 1000);
            int ms = static_cast<int>(t % 1000);
            if (ms < 0) {
                ms += 1000;
                --secs;
            }
            std::tm tm{};
            localtime_r(&secs, &tm);
            long off = tm.tm_gmtoff / 60;
            char sign = off < 0 ? '-' : '+';
            off = off < 0 ? -off : off;
            char want[64];
            std::snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d.%03d%c%02ld:%02ld",
                          tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms,
                          sign, off / 60, off % 60);
            CHECK_MESSAGE(format_rfc3339(t) == want, zone, " ", t);
            if (tm.tm_year + 1900 <= 9999)
                CHECK(parse_rfc3339(format_rfc3339(t)) == t); // RFC 3339 has 4 digits
        }
    }
}

TEST_CASE("parse_rfc3339 refuses what is not RFC 3339") {
    CHECK_FALSE(parse_rfc3339("yesterday"));
    CHECK_FALSE(parse_rfc3339("2026-13-01T00:00:00Z"));
    CHECK_FALSE(parse_rfc3339("2026-11-22 10:00:00Z"));
    CHECK_FALSE(parse_rfc3339("2026-11-22T10:00:00+1"));
}

TEST_CASE("the same instant formatted again after the zone changed shows the new zone") {
    // format_rfc3339 keeps the last second's local time: a change of TZ (and tzset) must not be missed.
    UnixMillis t = 1'795'338'000'000;
    {
        ZoneGuard tz("Europe/Berlin");
        CHECK(format_rfc3339(t) == "2026-11-22T10:00:00.000+01:00");
        CHECK(format_rfc3339(t + 1) == "2026-11-22T10:00:00.001+01:00");
    }
    {
        ZoneGuard tz("Asia/Kathmandu");
        CHECK(format_rfc3339(t) == "2026-11-22T14:45:00.000+05:45");
    }
    {
        ZoneGuard tz("UTC");
        CHECK(format_rfc3339(t + 2) == "2026-11-22T09:00:00.002+00:00");
    }
}
