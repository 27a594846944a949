// libical through dlopen (daemon/tz/ical_api.hpp). Loaded on the first schedule, never unloaded
// (RTLD_NODELETE, as systemd): the zones libical hands out (icaltimezone*) are its own, kept in its built-in
// table for the life of the process. Every symbol is resolved at once, so that a libical too old for us
// fails here, with the name of what it lacks, rather than at the first call of that function.
#include "daemon/tz/ical_api.hpp"

#include "common/log.hpp"
#include "common/shared_library.hpp"

#include <cstdlib>
#include <string>

namespace luaflow::tz {

Result<IcalApi> load_ical_api(const char* soname) {
    auto lib = SharedLibrary::open(soname);
    if (!lib) return lib.error();
    IcalApi api;
    // Each member is named after its function without the "ical" prefix.
#define LUAFLOW_ICAL_SYMBOL(member) lib->resolve("ical" #member, api.member)
    LUAFLOW_ICAL_SYMBOL(error_clear_errno);
    LUAFLOW_ICAL_SYMBOL(errno_return);
    LUAFLOW_ICAL_SYMBOL(recurrencetype_from_string);
    LUAFLOW_ICAL_SYMBOL(recurrencetype_day_day_of_week);
    LUAFLOW_ICAL_SYMBOL(recurrencetype_day_position);
    LUAFLOW_ICAL_SYMBOL(recur_iterator_new);
    LUAFLOW_ICAL_SYMBOL(recur_iterator_set_start);
    LUAFLOW_ICAL_SYMBOL(recur_iterator_next);
    LUAFLOW_ICAL_SYMBOL(recur_iterator_free);
    LUAFLOW_ICAL_SYMBOL(time_from_timet_with_zone);
    LUAFLOW_ICAL_SYMBOL(time_from_string);
    LUAFLOW_ICAL_SYMBOL(time_as_timet);
    LUAFLOW_ICAL_SYMBOL(time_is_null_time);
    LUAFLOW_ICAL_SYMBOL(time_is_utc);
    LUAFLOW_ICAL_SYMBOL(timezone_get_builtin_timezone);
    LUAFLOW_ICAL_SYMBOL(timezone_get_utc_timezone);
    LUAFLOW_ICAL_SYMBOL(timezone_get_utc_offset_of_utc_time);
#undef LUAFLOW_ICAL_SYMBOL
    if (auto found = lib->done(); !found) return found.error();
    return api;
}

Result<const IcalApi*> ical_api() {
    // Made by the first caller (C++ initialises a local static once, even across threads); schedules are
    // read and expanded on the loop thread.
    static const Result<IcalApi> loaded = [] {
        auto api = load_ical_api(kIcalLibrary);
        if (!api)
            log::warn("schedules and time zones are off: %s", api.error().message.c_str());
        else
            log::debug("%s loaded for the first schedule or time zone", kIcalLibrary);
        return api;
    }();
    if (!loaded) return loaded.error();
    return &loaded.value();
}

const IcalApi& ical() {
    auto api = ical_api();
    if (!api) {
        log::error("bug: libical used before it loaded: %s", api.error().message.c_str());
        std::abort();
    }
    return **api;
}

} // namespace luaflow::tz
