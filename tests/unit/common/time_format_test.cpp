#include "common/time_format.hpp"

#include <doctest/doctest.h>

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

TEST_CASE("parse_rfc3339 refuses what is not RFC 3339") {
    CHECK_FALSE(parse_rfc3339("yesterday"));
    CHECK_FALSE(parse_rfc3339("2026-13-01T00:00:00Z"));
    CHECK_FALSE(parse_rfc3339("2026-11-22 10:00:00Z"));
    CHECK_FALSE(parse_rfc3339("2026-11-22T10:00:00+1"));
}
