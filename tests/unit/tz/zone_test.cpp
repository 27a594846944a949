// Wall-clock times to instants by RFC 5545 section 3.3.5, in two zones with DST.
#include "daemon/tz/zone.hpp"

#include <doctest/doctest.h>

using namespace luaflow::tz;

namespace {

LocalTime at(int y, int mo, int d, int h, int mi) {
    return {y, mo, d, h, mi, 0};
}

} // namespace

TEST_CASE("a time in the spring-forward gap is read with the offset before it (Berlin, New York)") {
    Zone berlin = Zone::find("Europe/Berlin").value();
    CHECK(format_in_zone(berlin.instant(at(2027, 3, 28, 2, 30)), berlin) == "2027-03-28T03:30:00+02:00");
    CHECK(format_in_zone(berlin.instant(at(2027, 3, 28, 1, 59)), berlin) == "2027-03-28T01:59:00+01:00");
    CHECK(format_in_zone(berlin.instant(at(2027, 3, 28, 3, 0)), berlin) == "2027-03-28T03:00:00+02:00");
    Zone ny = Zone::find("America/New_York").value();
    CHECK(format_in_zone(ny.instant(at(2027, 3, 14, 2, 0)), ny) == "2027-03-14T03:00:00-04:00");
    CHECK(format_in_zone(ny.instant(at(2027, 3, 14, 2, 59)), ny) == "2027-03-14T03:59:00-04:00");
}

TEST_CASE("an ambiguous fall-back time is its first instant (Berlin, New York)") {
    Zone berlin = Zone::find("Europe/Berlin").value();
    CHECK(format_in_zone(berlin.instant(at(2027, 10, 31, 2, 30)), berlin) == "2027-10-31T02:30:00+02:00");
    CHECK(format_in_zone(berlin.instant(at(2027, 10, 31, 3, 0)), berlin) == "2027-10-31T03:00:00+01:00");
    Zone ny = Zone::find("America/New_York").value();
    CHECK(format_in_zone(ny.instant(at(2027, 11, 7, 1, 30)), ny) == "2027-11-07T01:30:00-04:00");
    CHECK(format_in_zone(ny.instant(at(2027, 11, 7, 2, 30)), ny) == "2027-11-07T02:30:00-05:00");
}

TEST_CASE("zones without DST and the southern hemisphere") {
    Zone kolkata = Zone::find("Asia/Kolkata").value();
    CHECK(format_in_zone(kolkata.instant(at(2027, 3, 28, 2, 30)), kolkata) == "2027-03-28T02:30:00+05:30");
    Zone sydney = Zone::find("Australia/Sydney").value();
    CHECK(format_in_zone(sydney.instant(at(2027, 10, 3, 2, 30)), sydney) == "2027-10-03T03:30:00+11:00");
    CHECK(format_in_zone(sydney.instant(at(2027, 4, 4, 2, 30)), sydney) == "2027-04-04T02:30:00+11:00");
    CHECK(Zone::find("UTC").value().offset_at(1'800'000'000) == 0);
}

TEST_CASE("an unknown zone is an error naming it") {
    auto z = Zone::find("Europe/Atlantis");
    REQUIRE_FALSE(z);
    CHECK(z.error().message.find("'Europe/Atlantis'") != std::string::npos);
}

TEST_CASE("local time parsing and naive arithmetic round-trip") {
    LocalTime t;
    CHECK(parse_local_time("2028-02-29T23:59:58", t));
    CHECK(from_naive_seconds(naive_seconds(t) + 2) == LocalTime{2028, 3, 1, 0, 0, 0});
    CHECK(parse_local_time("2026-01-05T09:00", t));
    CHECK_FALSE(parse_local_time("2026-02-30T09:00:00", t));
    CHECK_FALSE(parse_local_time("2026-01-05 09:00:00", t));
    CHECK(from_naive_seconds(-1) == LocalTime{1969, 12, 31, 23, 59, 59});
}

TEST_CASE("UTC is a zone without libical, under each of its names") {
    for (const char* name : {"UTC", "Etc/UTC", "Z"}) {
        auto z = Zone::find(name);
        REQUIRE(z.ok());
        CHECK(z.value().name() == "UTC");
        CHECK(z.value().offset_at(1'800'000'000) == 0);
    }
    Zone utc;
    CHECK(utc.name() == "UTC");
    CHECK(format_in_zone(1'800'000'000, utc) == "2027-01-15T08:00:00+00:00");
    CHECK(utc.instant(at(2027, 3, 28, 2, 30)) == naive_seconds(at(2027, 3, 28, 2, 30)));
}

TEST_CASE("scheduled_for shows in UTC, in the process's zone and in another zone as format_in_zone does") {
    const std::int64_t winter = 1'800'000'000'000, summer = 1'815'000'000'000; // January, July 2027
    for (std::int64_t ms : {winter, summer}) {
        CHECK(format_scheduled(ms, "UTC") == format_in_zone(ms / 1000, Zone()));
        CHECK(format_scheduled(ms, "Europe/Berlin") ==
              format_in_zone(ms / 1000, Zone::find("Europe/Berlin").value()));
        // The process's own zone goes through the C library's localtime_r, with the same result.
        const Zone own = Zone::system();
        CHECK(format_scheduled(ms, own.name()) == format_in_zone(ms / 1000, own));
    }
    CHECK(format_scheduled(winter, "Europe/Berlin") == "2027-01-15T09:00:00+01:00");
    // Not a whole second, or no zone: the process's zone with milliseconds, as every other time.
    CHECK(format_scheduled(winter + 5, "UTC") == luaflow::format_rfc3339(winter + 5));
    CHECK(format_scheduled(winter, std::nullopt) == luaflow::format_rfc3339(winter));
}
