#include "daemon/schedule/check.hpp"

#include "daemon/schedule/rules.hpp"

namespace luaflow::schedule {

std::optional<scripting::LoadError> check_schedule(const scripting::WorkflowDef& def) {
    if (def.schedule.is_null()) return std::nullopt;
    auto rules = parse_schedule(def.schedule);
    if (!rules) return scripting::LoadError{def.file, def.schedule_line, rules.error().message};
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
