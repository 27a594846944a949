// libical through dlopen: the table is complete, and a library that cannot be loaded is an error naming
// it and the loader's reason.
#include "daemon/tz/ical_api.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace luaflow::tz;

TEST_CASE("libical.so.3 loads with every function of the table") {
    auto api = load_ical_api(kIcalLibrary);
    REQUIRE_MESSAGE(api.ok(), api.error().message);
    const IcalApi& t = api.value();
    CHECK(static_cast<bool>(t.error_clear_errno));
    CHECK(static_cast<bool>(t.errno_return));
    CHECK(static_cast<bool>(t.recurrencetype_from_string));
    CHECK(static_cast<bool>(t.recurrencetype_day_day_of_week));
    CHECK(static_cast<bool>(t.recurrencetype_day_position));
    CHECK(static_cast<bool>(t.recur_iterator_new));
    CHECK(static_cast<bool>(t.recur_iterator_set_start));
    CHECK(static_cast<bool>(t.recur_iterator_next));
    CHECK(static_cast<bool>(t.recur_iterator_free));
    CHECK(static_cast<bool>(t.time_from_timet_with_zone));
    CHECK(static_cast<bool>(t.time_from_string));
    CHECK(static_cast<bool>(t.time_as_timet));
    CHECK(static_cast<bool>(t.time_is_null_time));
    CHECK(static_cast<bool>(t.time_is_utc));
    CHECK(static_cast<bool>(t.timezone_get_builtin_timezone));
    CHECK(static_cast<bool>(t.timezone_get_utc_timezone));
    CHECK(static_cast<bool>(t.timezone_get_utc_offset_of_utc_time));
    // The table calls into the library: a rule parses, and UTC is UTC.
    icalrecurrencetype r = t.recurrencetype_from_string("FREQ=WEEKLY;BYDAY=TU");
    CHECK(r.freq == ICAL_WEEKLY_RECURRENCE);
    CHECK(t.recurrencetype_day_day_of_week(r.by_day[0]) == ICAL_TUESDAY_WEEKDAY);
    icaltimetype at = t.time_from_timet_with_zone(1'800'000'000, 0, t.timezone_get_utc_timezone());
    int is_daylight = 0;
    CHECK(t.timezone_get_utc_offset_of_utc_time(t.timezone_get_utc_timezone(), &at, &is_daylight) == 0);
    // The process-wide table is the same library.
    auto shared = ical_api();
    REQUIRE(shared.ok());
    CHECK(&ical() == shared.value());
}

TEST_CASE("a libical that cannot be loaded is an error naming the library and the loader's reason") {
    auto api = load_ical_api("libluaflow-no-such-ical.so.3");
    REQUIRE_FALSE(api.ok());
    const std::string& m = api.error().message;
    CHECK(m.rfind("cannot load libluaflow-no-such-ical.so.3: ", 0) == 0);
    CHECK(m.find("cannot open shared object file") != std::string::npos);
}

TEST_CASE("a library without libical's functions is an error naming the one missing") {
    // libc is loaded and is not libical: the first symbol of the table is missing from it.
    auto api = load_ical_api("libc.so.6");
    REQUIRE_FALSE(api.ok());
    CHECK(api.error().message.rfind("cannot use libc.so.6: ", 0) == 0);
    CHECK(api.error().message.find("icalerror_clear_errno") != std::string::npos);
}
