#pragma once
// A workflow's `schedule` (SPEC 3, 4): an RRULE string; { rrule=, dtstart=, tz=, exdate=, catchup= };
// { cron=, tz=, catchup= }; or a list of these. Parsed and checked here, for load errors that name the
// part at fault, and turned into recurrences.
#include "daemon/schedule/recurrence.hpp"

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace luaflow::schedule {

// What happens to occurrences missed while the daemon was down or the workflow disabled.
enum class Catchup { none, latest, all };
const char* to_string(Catchup c);

struct Rule {
    std::string text; // the RRULE or cron expression as written
    bool cron = false;
    std::string key; // names the series in the store: kind, text and zone
    std::vector<RRule> rrules;
    std::optional<LocalTime> dtstart; // the file's; otherwise the store keeps one
    Zone zone;
    std::set<UnixSeconds> exdates;
    Catchup catchup = Catchup::none;

    // {"rrule"|"cron": text, "tz", "dtstart", "catchup"} for list and show.
    nlohmann::json describe() const;
};

// The rules of a `schedule` value (null: none), or an error naming the part: "schedule[2].tz: ...", or
// naming libical.so.3 and the loader's reason when libical cannot be loaded (only a schedule loads it).
Result<std::vector<Rule>> parse_schedule(const nlohmann::json& schedule);

// The rule's recurrence, starting at its dtstart, else at `default_start` (the stored first load). Its
// key names the series, so that cursors of equal series share their first occurrences.
std::shared_ptr<const RecurrenceSpec> recurrence_of(const Rule& rule, UnixSeconds default_start);

} // namespace luaflow::schedule
