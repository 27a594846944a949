#include "daemon/schedule/check.hpp"

#include "daemon/schedule/rules.hpp"

#include <ctime>

namespace luaflow::schedule {

std::optional<scripting::LoadError> check_schedule(const scripting::WorkflowDef& def) {
    if (def.schedule.is_null()) return std::nullopt;
    auto rules = parse_schedule(def.schedule);
    if (!rules) return scripting::LoadError{def.file, def.schedule_line, rules.error().message};
    // An endless rule that names no time at all is a mistake (BYMONTH=2;BYMONTHDAY=30), not a schedule.
    const UnixSeconds now = std::time(nullptr);
    for (size_t i = 0; i < rules->size(); ++i) {
        const Rule& r = rules.value()[i];
        bool endless = true;
        for (const auto& rr : r.rrules)
            endless = endless && rr.count == 0 && icaltime_is_null_time(rr.until);
        if (!endless) continue;
        Cursor c(recurrence_of(r, now), now);
        if (!c.next()) {
            std::string name = rules->size() > 1 ? "schedule[" + std::to_string(i + 1) + "]" : "schedule";
            return scripting::LoadError{def.file, def.schedule_line,
                                        name + ": \"" + r.text + "\" never fires"};
        }
    }
    for (const auto& in : def.inputs)
        if (in.required && !in.default_value)
            return scripting::LoadError{def.file, def.schedule_line,
                                        "schedule: input '" + in.name +
                                            "' is required and has no default, so a scheduled run could not "
                                            "start (give it a default)"};
    return std::nullopt;
}

scripting::LoadResult checked(scripting::LoadResult loaded) {
    if (auto* def = std::get_if<std::shared_ptr<scripting::WorkflowDef>>(&loaded))
        if (auto err = check_schedule(**def)) return *err;
    return loaded;
}

} // namespace luaflow::schedule
