#include "daemon/schedule/rules.hpp"

#include "common/time_format.hpp"
#include "daemon/schedule/cron.hpp"

#include <map>
#include <mutex>

namespace luaflow::schedule {

using nlohmann::json;

namespace {

// A value in a message: invalid UTF-8 (a workflow file may hold any bytes) shown as U+FFFD, never thrown.
std::string shown(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Schedules parsed, kept by their JSON text up to this many (then all are dropped and the keeping starts
// over): the loader's check and the scheduler both parse each workflow's schedule, and workflows share
// schedules.
constexpr std::size_t kMaxKeptSchedules = 1024;

const Zone& system_zone() {
    static const Zone zone = Zone::system(); // read once: the daemon's zone does not change under it
    return zone;
}

// A time in the rule's zone: "2026-01-05T09:00:00" is a wall-clock time there; with an offset or Z,
// an instant. Returns the wall-clock time (for DTSTART) and the instant (for EXDATE).
Result<std::pair<LocalTime, UnixSeconds>> parse_time(const std::string& text, const Zone& zone) {
    LocalTime local;
    if (parse_local_time(text, local)) return std::make_pair(local, zone.instant(local));
    if (text.size() == 10 && parse_local_time(text + "T00:00:00", local))
        return std::make_pair(local, zone.instant(local));
    if (auto ms = parse_rfc3339(text)) {
        UnixSeconds t = *ms / 1000;
        return std::make_pair(zone.local(t), t);
    }
    return make_error(ErrorCode::invalid,
                      "\"" + text +
                          "\" is not an RFC 3339 time (\"2026-01-05T09:00:00\", "
                          "read in tz, or with an offset: \"2026-01-05T09:00:00+01:00\")");
}

Result<Rule> parse_rule(const json& j, const std::string& name) {
    Rule r{.zone = system_zone()};
    auto fail = [&](const std::string& part, const std::string& message) {
        return make_error(ErrorCode::invalid, name + part + ": " + message);
    };
    if (j.is_string()) {
        r.text = j.get<std::string>();
    } else if (j.is_object()) {
        static const std::set<std::string> keys = {"rrule", "dtstart", "tz", "exdate", "catchup", "cron"};
        for (auto it = j.begin(); it != j.end(); ++it) {
            if (!keys.count(it.key())) return fail("", "unknown field '" + it.key() + "'");
            if (it.key() != "exdate" && !it.value().is_string())
                return fail("." + it.key(), "expected a string, got " + shown(it.value()));
        }
        if (j.contains("rrule") == j.contains("cron")) return fail("", "needs exactly one of rrule, cron");
        r.cron = j.contains("cron");
        r.text = j[r.cron ? "cron" : "rrule"].get<std::string>();
        if (r.cron && (j.contains("dtstart") || j.contains("exdate")))
            return fail(j.contains("dtstart") ? ".dtstart" : ".exdate",
                        "not used with cron (only with rrule)");
        if (j.contains("tz")) {
            auto z = Zone::find(j["tz"].get<std::string>());
            if (!z) return fail(".tz", z.error().message);
            r.zone = z.value();
        }
        if (j.contains("catchup")) {
            std::string c = j["catchup"].get<std::string>();
            if (c == "none")
                r.catchup = Catchup::none;
            else if (c == "latest")
                r.catchup = Catchup::latest;
            else if (c == "all")
                r.catchup = Catchup::all;
            else
                return fail(".catchup", "expected \"none\", \"latest\" or \"all\", got \"" + c + "\"");
        }
    } else {
        return fail("", "expected an RRULE string or a table, got " + shown(j));
    }
    const char* kind = r.cron ? ".cron" : (j.is_object() ? ".rrule" : "");
    if (r.cron) {
        auto rules = cron_to_rrules(r.text);
        if (!rules) return fail(kind, rules.error().message);
        for (const auto& text : rules.value()) {
            auto parsed = parse_rrule(text);
            if (!parsed) return fail(kind, "\"" + r.text + "\": " + parsed.error().message);
            r.rrules.push_back(parsed.value());
        }
    } else {
        auto parsed = parse_rrule(r.text);
        if (!parsed) return fail(kind, parsed.error().message);
        r.rrules.push_back(parsed.value());
    }
    if (j.is_object() && j.contains("dtstart")) {
        auto t = parse_time(j["dtstart"].get<std::string>(), r.zone);
        if (!t) return fail(".dtstart", t.error().message);
        r.dtstart = t->first;
    }
    if (j.is_object() && j.contains("exdate")) {
        const json& ex = j["exdate"];
        if (!ex.is_array()) return fail(".exdate", "expected a list of times, got " + shown(ex));
        for (size_t i = 0; i < ex.size(); ++i) {
            std::string part = ".exdate[" + std::to_string(i + 1) + "]";
            if (!ex[i].is_string()) return fail(part, "expected a time string, got " + shown(ex[i]));
            auto t = parse_time(ex[i].get<std::string>(), r.zone);
            if (!t) return fail(part, t.error().message);
            r.exdates.insert(t->second);
        }
    }
    r.key = std::string(r.cron ? "cron:" : "rrule:") + r.text + "@" + r.zone.name();
    return r;
}

} // namespace

const char* to_string(Catchup c) {
    switch (c) {
    case Catchup::none:
        return "none";
    case Catchup::latest:
        return "latest";
    case Catchup::all:
        return "all";
    }
    return "none";
}

json Rule::describe() const {
    json j = {{cron ? "cron" : "rrule", text}, {"tz", zone.name()}, {"catchup", to_string(catchup)}};
    if (dtstart) j["dtstart"] = format_local_time(*dtstart);
    return j;
}

namespace {

Result<std::vector<Rule>> parse_uncached(const json& schedule) {
    std::vector<Rule> out;
    if (schedule.is_array()) {
        if (schedule.empty()) return make_error(ErrorCode::invalid, "schedule: the list is empty");
        for (size_t i = 0; i < schedule.size(); ++i) {
            auto r = parse_rule(schedule[i], "schedule[" + std::to_string(i + 1) + "]");
            if (!r) return r.error();
            out.push_back(std::move(r.value()));
        }
        return out;
    }
    auto r = parse_rule(schedule, "schedule");
    if (!r) return r.error();
    out.push_back(std::move(r.value()));
    return out;
}

} // namespace

Result<std::vector<Rule>> parse_schedule(const json& schedule) {
    if (schedule.is_null()) return std::vector<Rule>{};
    // The first schedule loads libical; without it, this workflow does not load, and the daemon runs on.
    if (auto api = tz::ical_api(); !api)
        return make_error(ErrorCode::unavailable, "schedule: needs libical: " + api.error().message);
    static std::mutex mutex;
    static std::map<std::string, Result<std::vector<Rule>>, std::less<>> kept;
    // The key is the schedule's exact bytes: MessagePack copies strings as they are, where dump() would
    // throw on one that is not UTF-8 (a workflow file may hold any bytes; the fuzzers found it).
    std::vector<std::uint8_t> bytes = json::to_msgpack(schedule);
    std::string text(bytes.begin(), bytes.end());
    {
        std::lock_guard lock(mutex);
        if (auto it = kept.find(text); it != kept.end()) return it->second;
    }
    Result<std::vector<Rule>> parsed = parse_uncached(schedule);
    std::lock_guard lock(mutex);
    if (kept.size() >= kMaxKeptSchedules) kept.clear();
    kept.emplace(std::move(text), parsed);
    return parsed;
}

std::shared_ptr<const RecurrenceSpec> recurrence_of(const Rule& rule, UnixSeconds default_start) {
    auto spec = std::make_shared<RecurrenceSpec>(RecurrenceSpec{.zone = rule.zone});
    spec->rules = rule.rrules;
    spec->dtstart = rule.dtstart ? *rule.dtstart : rule.zone.local(default_start);
    spec->exdates = rule.exdates;
    // rule.key holds the kind, the text (which makes the rrules) and the zone.
    spec->key = rule.key + "|" + std::to_string(tz::naive_seconds(spec->dtstart));
    for (UnixSeconds t : spec->exdates)
        spec->key += "|" + std::to_string(t);
    return spec;
}

} // namespace luaflow::schedule
