#include "daemon/schedule/scheduler.hpp"

#include "common/log.hpp"
#include "common/time_format.hpp"
#include "daemon/store/events.hpp"
#include "daemon/store/executions.hpp"
#include "daemon/store/schedules.hpp"

#include <chrono>
#include <deque>

namespace luaflow::schedule {

using nlohmann::json;

namespace {

// The system's wall clock, moved as now_unix_ms() is (luaflowctl test's virtual time).
std::int64_t wall_clock_ns() {
    using namespace std::chrono;
    return duration_cast<nanoseconds>(system_clock::now().time_since_epoch()).count() +
           clock_shift() * 1'000'000;
}

std::string when(UnixSeconds t, const Zone& z) {
    return format_in_zone(t, z);
}

} // namespace

Scheduler::Scheduler(uv_loop_t* loop, store::Db& db, registry::Registry& registry, exec::Submitter& executor,
                     Clock clock, std::optional<std::int64_t> process_started_ns)
    : db_(db), registry_(registry), executor_(executor),
      clock_(clock ? std::move(clock) : Clock(wall_clock_ns)),
      process_started_ns_(process_started_ns ? *process_started_ns : clock_()),
      timer_(
          loop, [this] { on_fire(); }, [this] { on_clock_set(); }) {}

std::int64_t Scheduler::now_ns() const {
    return clock_();
}

void Scheduler::start() {
    // What came due since the process started is not missed: it fires now, late.
    for (const auto& [id, entry] : registry_.all())
        refresh(id, process_started_ns_);
}

void Scheduler::stop() {
    stopped_ = true;
    timer_.disarm();
}

void Scheduler::refresh(const std::string& id) {
    refresh(id, std::nullopt);
}

void Scheduler::refresh(const std::string& id, std::optional<std::int64_t> missed_before_ns) {
    bool was_disabled = false;
    if (auto it = workflows_.find(id); it != workflows_.end()) {
        was_disabled = !it->second.enabled;
        if (it->second.queued_at) due_.erase({*it->second.queued_at, id});
        workflows_.erase(it);
    }
    const registry::WorkflowEntry* entry = registry_.find(id);
    if (!entry || !entry->def || entry->def->schedule.is_null()) return arm();
    auto rules = parse_schedule(entry->def->schedule);
    if (!rules) { // the loader checked it; a stored definition from an older version may not pass
        log::error("workflow %s: %s; its schedule is off", id.c_str(), rules.error().message.c_str());
        return arm();
    }
    WorkflowState& w = workflows_[id];
    w.def = entry->def;
    w.enabled = store::enabled_override(db_, id).value_or(entry->def->enabled);
    const std::int64_t now_at = now_ns();
    const UnixSeconds now = static_cast<UnixSeconds>(now_at / 1'000'000'000);
    // Occurrences before this instant were missed: before the process started, before the enable, or
    // (a reload, a step of the clock, a machine that slept) before the current second.
    if (!missed_before_ns) missed_before_ns = was_disabled && w.enabled ? now_at : now * 1'000'000'000;
    missed_before_ns = std::min(*missed_before_ns, now_at); // the clock may have been set back since
    // The first whole second that was not missed.
    const UnixSeconds not_missed =
        *missed_before_ns / 1'000'000'000 + (*missed_before_ns % 1'000'000'000 > 0);
    for (Rule& rule : rules.value()) {
        RuleState r;
        auto row = store::find_schedule(db_, id, rule.key);
        if (!row) {
            // First sight: the series starts now (to the minute, so FREQ=HOURLY;BYMINUTE=0 fires at :00:00,
            // not at the second of the load), and nothing before now was missed.
            row = store::ScheduleRow{now - now % 60, std::max(now, not_missed) - 1};
            store::insert_schedule(db_.write(), id, rule.key, *row);
        }
        r.spec = recurrence_of(rule, row->dtstart);
        r.handled = row->handled;
        r.rule = std::move(rule);
        w.rules.push_back(std::move(r));
    }
    if (w.enabled && !stopped_) {
        for (RuleState& r : w.rules) {
            // What was missed follows `catchup`; later occurrences up to now fire at once, a little late.
            if (r.handled < not_missed - 1) catch_up(w, r, not_missed);
            r.cursor = std::make_unique<Cursor>(r.spec, std::max(r.handled, not_missed - 1));
            r.next = r.cursor->next();
        }
    }
    requeue(id, w);
    arm();
}

void Scheduler::requeue(const std::string& id, WorkflowState& w) {
    w.armed_ns = now_ns();
    if (w.queued_at) due_.erase({*w.queued_at, id});
    w.queued_at.reset();
    for (const RuleState& r : w.rules)
        if (r.next && (!w.queued_at || *r.next < *w.queued_at)) w.queued_at = r.next;
    if (w.queued_at) due_.insert({*w.queued_at, id});
    // Its state is made now, not in the turn it fires (a state unused for a minute is closed).
    if (w.enabled && w.queued_at && *w.queued_at * 1'000'000'000 - w.armed_ns < kPrepareAheadNs)
        executor_.prepare(id);
}

void Scheduler::arm() {
    if (stopped_ || due_.empty()) return timer_.disarm();
    const UnixSeconds at = due_.begin()->first;
    if (warmed_for_ != at && at * 1'000'000'000 - now_ns() > kWarmAheadNs)
        timer_.arm_at(at * 1'000'000'000 - kWarmAheadNs);
    else
        timer_.arm_at(at * 1'000'000'000);
}

void Scheduler::warm_up(UnixSeconds at) {
    warmed_for_ = at;
    for (auto it = due_.begin(); it != due_.end() && it->first == at; ++it)
        executor_.prepare(it->second); // its Lua state, if it was closed since requeue
}

void Scheduler::on_fire() {
    if (stopped_) return;
    const std::int64_t woke = now_ns();
    const UnixSeconds now = static_cast<UnixSeconds>(woke / 1'000'000'000);
    if (!due_.empty() && due_.begin()->first > now) {
        warm_up(due_.begin()->first);
        return arm();
    }
    // Everything due is taken off the line, and all of it starts before any rule computes its next
    // occurrence: the tenth fire of an instant does not wait for nine recurrence expansions (issue 16).
    // All of it is one loop turn, so one transaction.
    std::vector<std::pair<UnixSeconds, std::string>> due;
    while (!due_.empty() && due_.begin()->first <= now) {
        due.push_back(*due_.begin());
        due_.erase(due_.begin());
        workflows_.at(due.back().second).queued_at.reset();
    }
    std::vector<std::string> passed_over;
    for (const auto& [at, id] : due) {
        // Far behind the clock: it stepped forward or the machine slept. Treat the gap as missed.
        if (at < now - kPassedOver)
            passed_over.push_back(id);
        else
            fire(workflows_.at(id), at, woke);
    }
    for (const auto& [at, id] : due) {
        if (at < now - kPassedOver) continue;
        WorkflowState& w = workflows_.at(id);
        for (RuleState& r : w.rules)
            if (r.next && *r.next == at) r.next = r.cursor->next();
        requeue(id, w); // one still due (a slow turn) fires at once on the next
    }
    for (const auto& id : passed_over)
        refresh(id);
    arm();
}

void Scheduler::on_clock_set() {
    log::info("the wall clock was set; recomputing the schedules");
    std::vector<std::string> ids;
    for (const auto& [id, w] : workflows_)
        ids.push_back(id);
    for (const auto& id : ids)
        refresh(id);
    arm();
}

void Scheduler::fire(WorkflowState& w, UnixSeconds at, std::int64_t woke_ns) {
    // Every rule due at `at` moves on; the workflow runs once even when two rules name the same instant.
    // The occurrences handled, the execution they start (submit) or the event that says why not are one
    // transaction: a restart neither fires twice nor forgets.
    RuleState* first = nullptr;
    for (RuleState& r : w.rules) {
        if (!r.next || *r.next != at) continue;
        if (!first) first = &r;
        r.handled = at;
        store::mark_handled(db_.write(), w.def->id, r.rule.key, at);
    }
    if (!first) return;
    if (w.def->overlap == scripting::Overlap::skip && executor_.busy(w.def->id)) {
        exec::Counts c = executor_.counts(w.def->id);
        drop(w, 1,
             "occurrence " + when(at, first->rule.zone) + " skipped: " + std::to_string(c.running) +
                 " execution(s) still running (overlap = \"skip\")");
        return;
    }
    // The run is stamped with the wake-up, as are all fires of this instant (one turn, one commit).
    // Only an occurrence armed before its time says how late firing is (the current second at a start
    // or reload fires at once, up to 1 s after it).
    if (launch(w, at, *first, false, woke_ns) && w.armed_ns < at * 1'000'000'000)
        lateness_.record(std::max<std::int64_t>(0, woke_ns - at * 1'000'000'000));
}

bool Scheduler::launch(WorkflowState& w, UnixSeconds at, const RuleState& r, bool catchup,
                       std::optional<std::int64_t> woke_ns) {
    // A full disk: nothing is written for the occurrence, and it is said once per workflow per spell.
    bool first_refusal = false;
    if (auto room = db_.admit_new_work(w.def->id, first_refusal); !room) {
        if (first_refusal)
            log::error("workflow %s: scheduled runs are not started from %s on: %s", w.def->id.c_str(),
                       when(at, r.rule.zone).c_str(), room.error().message.c_str());
        return false;
    }
    exec::SubmitRequest req;
    req.workflow = w.def->id;
    req.trigger = {{"type", "schedule"}, {r.rule.cron ? "cron" : "rrule", r.rule.text}};
    if (catchup) req.trigger["catchup"] = to_string(r.rule.catchup);
    req.scheduled_for = at * 1000;
    req.scheduled_tz = r.rule.zone.name();
    req.queue_even_if_skip = catchup; // catchup = "all" asked for every run
    if (woke_ns) req.triggered_at = *woke_ns / 1'000'000;
    auto id = executor_.submit(req);
    if (!id) {
        log::error_about({w.def->id, {}, {}}, "workflow %s: scheduled run for %s not started: %s",
                         w.def->id.c_str(), when(at, r.rule.zone).c_str(), id.error().message.c_str());
        executor_.skipped(db_.write(), w.def->id, 1,
                          "occurrence " + when(at, r.rule.zone) + " not started: " + id.error().message);
        return false;
    }
    return true;
}

void Scheduler::drop(WorkflowState& w, std::int64_t count, const std::string& message) {
    log::info_about({w.def->id, {}, {}}, "workflow %s: %s", w.def->id.c_str(), message.c_str());
    executor_.skipped(db_.write(), w.def->id, count, message);
}

Scheduler::Missed Scheduler::missed_between(const RuleState& r, UnixSeconds after, UnixSeconds before) const {
    Missed m;
    Cursor c(r.spec, after);
    std::deque<UnixSeconds> newest;
    while (auto t = c.next()) {
        if (*t >= before) break;
        if (m.count == 0) m.oldest = *t;
        if (++m.count > kMaxCounted) {
            m.more = true;
            --m.count;
            break;
        }
        newest.push_back(*t);
        if (static_cast<std::int64_t>(newest.size()) > kMaxCatchupRuns) newest.pop_front();
    }
    if (m.more) {
        // Too many to walk: find the newest ones by searching back from `before` in growing windows.
        newest.clear();
        for (UnixSeconds span = 3600; newest.empty(); span *= 8) {
            UnixSeconds from = std::max(after, before - span);
            Cursor back(r.spec, from);
            while (auto t = back.next()) {
                if (*t >= before) break;
                newest.push_back(*t);
                if (static_cast<std::int64_t>(newest.size()) > kMaxCatchupRuns) newest.pop_front();
            }
            if (from == after) break;
        }
    }
    m.newest.assign(newest.begin(), newest.end());
    return m;
}

void Scheduler::catch_up(WorkflowState& w, RuleState& r, UnixSeconds until) {
    Missed m = missed_between(r, r.handled, until); // before `until`
    r.handled = until - 1;
    store::mark_handled(db_.write(), w.def->id, r.rule.key, r.handled);
    if (m.count == 0) return;
    const Zone& z = r.rule.zone;
    const std::string span =
        m.count == 1 ? when(m.oldest, z) : when(m.oldest, z) + " .. " + when(m.newest.back(), z);
    const std::string how_many = (m.more ? "more than " : "") + std::to_string(m.count);
    std::vector<UnixSeconds> runs;
    if (r.rule.catchup == Catchup::latest) runs = {m.newest.back()};
    if (r.rule.catchup == Catchup::all) runs = m.more ? std::vector<UnixSeconds>{m.newest.back()} : m.newest;
    const std::int64_t dropped = m.count - static_cast<std::int64_t>(runs.size());
    if (dropped > 0) {
        const std::string why = runs.empty() ? ""
                                : r.rule.catchup == Catchup::latest
                                    ? ": only the latest runs"
                                    : ": only the newest " + std::to_string(runs.size()) + " run";
        drop(w, dropped,
             (runs.empty() ? how_many : std::to_string(dropped) + " of " + how_many) +
                 " missed occurrence(s) (" + span + ") skipped (catchup = \"" + to_string(r.rule.catchup) +
                 "\")" + why);
    }
    if (!runs.empty())
        log::info("workflow %s: catching up %zu missed occurrence(s) (catchup = \"%s\"), %s",
                  w.def->id.c_str(), runs.size(), to_string(r.rule.catchup), span.c_str());
    for (UnixSeconds t : runs)
        launch(w, t, r, true);
}

Result<std::vector<std::string>> Scheduler::upcoming(const std::string& id, int n,
                                                     std::optional<UnixSeconds> after) const {
    const registry::WorkflowEntry* entry = registry_.find(id);
    if (!entry) return make_error(ErrorCode::not_found, "no workflow '" + id + "'");
    if (!entry->def)
        return make_error(ErrorCode::conflict,
                          "workflow '" + id + "' does not load: " + entry->error->to_string());
    auto it = workflows_.find(id);
    if (it == workflows_.end())
        return make_error(ErrorCode::conflict, "workflow '" + id + "' has no schedule");
    const UnixSeconds from = after ? *after : now_ns() / 1'000'000'000;
    struct Stream {
        std::unique_ptr<Cursor> cursor;
        std::optional<UnixSeconds> head;
        const Zone* zone;
    };
    std::vector<Stream> streams;
    for (const RuleState& r : it->second.rules) {
        Stream s{std::make_unique<Cursor>(r.spec, from), std::nullopt, &r.rule.zone};
        s.head = s.cursor->next();
        streams.push_back(std::move(s));
    }
    std::vector<std::string> out;
    std::optional<UnixSeconds> last;
    while (static_cast<int>(out.size()) < n) {
        Stream* best = nullptr;
        for (auto& s : streams)
            if (s.head && (!best || *s.head < *best->head)) best = &s;
        if (!best) break;
        UnixSeconds t = *best->head;
        best->head = best->cursor->next();
        if (last && t == *last) continue;
        last = t;
        out.push_back(format_in_zone(t, *best->zone));
    }
    return out;
}

std::optional<UnixSeconds> Scheduler::next_fire(const std::string& id) const {
    auto it = workflows_.find(id);
    if (it == workflows_.end() || !it->second.enabled) return std::nullopt;
    return it->second.queued_at;
}

json Scheduler::describe(const std::string& id) const {
    auto it = workflows_.find(id);
    if (it == workflows_.end()) return nullptr;
    json out = json::array();
    for (const RuleState& r : it->second.rules) {
        json d = r.rule.describe();
        if (!r.rule.cron)
            d["dtstart"] = format_local_time(r.spec->dtstart); // the stored one if the file has none
        out.push_back(d);
    }
    return out;
}

} // namespace luaflow::schedule
