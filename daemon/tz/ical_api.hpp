#pragma once
// libical, loaded on first use: a daemon whose workflows have no schedule (and that shows no time in a
// zone other than UTC or its own) maps none of it, nor the ICU libraries and the shared libstdc++ it
// pulls in (~3.5 MiB resident). As systemd does with its optional libraries (src/shared/dlfcn-util.h,
// dlopen_many_sym_or_warn): dlopen("libical.so.3") once, every function we call resolved with dlsym into
// one table, typed by <libical/ical.h>'s own declarations. We compile against libical's headers (its
// types: icalrecurrencetype, icaltimetype) and never link it (no DT_NEEDED in luaflowd).
#include "common/result.hpp"

#include <libical/ical.h>

namespace luaflow::tz {

// The soname asked of the dynamic loader (libical's ABI 3, the one <libical/ical.h> describes).
inline constexpr const char* kIcalLibrary = "libical.so.3";

// The functions of libical luaflow calls, each member named after its function without "ical".
struct IcalApi {
    decltype(&::icalerror_clear_errno) error_clear_errno = nullptr;
    decltype(&::icalerrno_return) errno_return = nullptr; // icalerrno is *icalerrno_return()

    decltype(&::icalrecurrencetype_from_string) recurrencetype_from_string = nullptr;
    decltype(&::icalrecurrencetype_day_day_of_week) recurrencetype_day_day_of_week = nullptr;
    decltype(&::icalrecurrencetype_day_position) recurrencetype_day_position = nullptr;
    decltype(&::icalrecur_iterator_new) recur_iterator_new = nullptr;
    decltype(&::icalrecur_iterator_set_start) recur_iterator_set_start = nullptr;
    decltype(&::icalrecur_iterator_next) recur_iterator_next = nullptr;
    decltype(&::icalrecur_iterator_free) recur_iterator_free = nullptr;

    decltype(&::icaltime_from_timet_with_zone) time_from_timet_with_zone = nullptr;
    decltype(&::icaltime_from_string) time_from_string = nullptr;
    decltype(&::icaltime_as_timet) time_as_timet = nullptr;
    decltype(&::icaltime_is_null_time) time_is_null_time = nullptr;
    decltype(&::icaltime_is_utc) time_is_utc = nullptr;

    decltype(&::icaltimezone_get_builtin_timezone) timezone_get_builtin_timezone = nullptr;
    decltype(&::icaltimezone_get_utc_timezone) timezone_get_utc_timezone = nullptr;
    decltype(&::icaltimezone_get_utc_offset_of_utc_time) timezone_get_utc_offset_of_utc_time = nullptr;
};

// The table: loaded by the first call (the first schedule, or the first zone other than UTC and the
// process's own) and kept for the life of the process. Without libical (not installed, too old), an error
// naming libical.so.3 and the loader's reason (dlerror()); every later call gives the same one.
Result<const IcalApi*> ical_api();
// The table where libical is known to be loaded: a parsed rule or a zone other than UTC exists only once
// ical_api() succeeded. Ends the process (a bug) otherwise.
const IcalApi& ical();
// dlopen(soname) and the table's dlsyms alone, for tests: nothing cached, nothing logged.
Result<IcalApi> load_ical_api(const char* soname);

} // namespace luaflow::tz
