// The strings of time users write: durations, sizes, RFC 3339 times, local times, and schedules (RRULE
// strings, cron expressions, { rrule=, dtstart=, tz=, exdate=, catchup= } tables as JSON, lists of them).
// The input is tried as each. What must hold: parsing returns; a parsed duration or time prints back to
// the same value; a parsed schedule expands (its first occurrences, ascending) and returns.
#include "common/duration.hpp"
#include "common/size.hpp"
#include "common/time_format.hpp"
#include "daemon/schedule/cron.hpp"
#include "daemon/schedule/recurrence.hpp"
#include "daemon/schedule/rules.hpp"
#include "tests/fuzz/fuzz_support.hpp"

#include <cstdint>
#include <string>

namespace {

using namespace luaflow;
using nlohmann::json;

// An instant the expansions start after (2026-01-01T00:00:00Z) and where rules without dtstart begin.
constexpr UnixSeconds kStart = 1'767'225'600;
constexpr int kOccurrences = 16;

void expand(const json& schedule_value) {
    auto rules = schedule::parse_schedule(schedule_value);
    if (!rules) {
        if (rules.error().message.empty()) fuzz::violated("a schedule error without a message");
        return;
    }
    for (const schedule::Rule& rule : *rules) {
        schedule::Cursor cursor(schedule::recurrence_of(rule, kStart), kStart);
        UnixSeconds last = kStart;
        for (int i = 0; i < kOccurrences; ++i) {
            auto t = cursor.next();
            if (!t) break;
            if (*t <= last)
                fuzz::violated("occurrences not ascending after " + std::to_string(last) + ": " + rule.text);
            last = *t;
        }
    }
}

void durations(const std::string& text) {
    if (auto ms = parse_duration(text)) {
        auto again = parse_duration(format_duration(*ms));
        if (!again || *again != *ms)
            fuzz::violated("duration '" + text + "' prints as '" + format_duration(*ms) +
                           "', read back differently");
    }
    if (auto bytes = parse_size(text)) (void)format_size(*bytes);
}

void times(const std::string& text) {
    // Years 1..9999 print in RFC 3339's four digits; others need not read back.
    constexpr UnixMillis kMin = -62'135'596'800'000, kMax = 253'402'300'799'000;
    if (auto t = parse_rfc3339(text); t && *t >= kMin && *t <= kMax) {
        auto again = parse_rfc3339(format_rfc3339(*t));
        if (!again || *again != *t)
            fuzz::violated("time '" + text + "' prints as '" + format_rfc3339(*t) +
                           "', read back differently");
    }
    tz::LocalTime local;
    if (tz::parse_local_time(text, local)) (void)tz::format_local_time(local);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static bool quiet = (fuzz::quiet_process(), true);
    (void)quiet;
    std::string text(reinterpret_cast<const char*>(data), size);
    durations(text);
    times(text);
    // A schedule table or list (as JSON, the way a workflow's table reaches the parser), else the text as
    // an RRULE and as a cron expression.
    json j = json::parse(text, nullptr, false);
    if (!j.is_discarded() && (j.is_object() || j.is_array())) {
        expand(j);
    } else {
        expand(json(text));
        expand(json{{"cron", text}});
        (void)schedule::cron_to_rrules(text);
    }
    return 0;
}
