#include "daemon/schedule/check.hpp"

#include "daemon/schedule/rules.hpp"

#include <ctime>
#include <map>
#include <mutex>

namespace luaflow::schedule {

namespace {

// Answers kept, up to this many (then all are dropped and the keeping starts over).
constexpr std::size_t kMaxKeptAnswers = 1024;

struct KeptAnswers {
    std::mutex mutex;
    std::map<std::string, bool> fires; // by rule (kind, text, zone) and the file's dtstart
    std::uint64_t computed = 0;
};

KeptAnswers& kept_answers() {
    static KeptAnswers k;
    return k;
}

// Whether an endless rule names any time at all. It does not depend on when it is asked (an endless
// series that fires once after now fires after any later instant), so the answer is kept by rule: at
// start-up, workflows that share a rule expand it once.
bool ever_fires(const Rule& r) {
    const std::string key = r.key + "|" + (r.dtstart ? format_local_time(*r.dtstart) : "");
    KeptAnswers& k = kept_answers();
    {
        std::lock_guard lock(k.mutex);
        if (auto it = k.fires.find(key); it != k.fires.end()) return it->second;
    }
    const UnixSeconds now = std::time(nullptr);
    const bool fires = Cursor(recurrence_of(r, now), now).next().has_value();
    std::lock_guard lock(k.mutex);
    ++k.computed;
    if (k.fires.size() >= kMaxKeptAnswers) k.fires.clear();
    k.fires.emplace(key, fires);
    return fires;
}

} // namespace

std::optional<scripting::LoadError> check_schedule(const scripting::WorkflowDef& def) {
    if (def.schedule.is_null()) return std::nullopt;
    auto rules = parse_schedule(def.schedule);
    if (!rules) return scripting::LoadError{def.file, def.schedule_line, rules.error().message};
    // An endless rule that names no time at all is a mistake (BYMONTH=2;BYMONTHDAY=30), not a schedule.
    for (size_t i = 0; i < rules->size(); ++i) {
        const Rule& r = rules.value()[i];
        bool endless = true;
        for (const RRule& rr : r.rrules)
            endless = endless && rr->count == 0 && tz::ical().time_is_null_time(rr->until);
        if (!endless || ever_fires(r)) continue;
        std::string name = rules->size() > 1 ? "schedule[" + std::to_string(i + 1) + "]" : "schedule";
        return scripting::LoadError{def.file, def.schedule_line, name + ": \"" + r.text + "\" never fires"};
    }
    for (const auto& in : def.inputs)
        if (in.required && !in.default_value)
            return scripting::LoadError{def.file, def.schedule_line,
                                        "schedule: input '" + in.name +
                                            "' is required and has no default, so a scheduled run could not "
                                            "start (give it a default)"};
    return std::nullopt;
}

std::uint64_t fire_checks_computed() {
    std::lock_guard lock(kept_answers().mutex);
    return kept_answers().computed;
}

scripting::LoadResult checked(scripting::LoadResult loaded) {
    if (auto* def = std::get_if<std::shared_ptr<scripting::WorkflowDef>>(&loaded))
        if (auto err = check_schedule(**def)) return *err;
    return loaded;
}

} // namespace luaflow::schedule
