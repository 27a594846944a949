#pragma once
// Fires the workflows' schedules (SPEC 4). One wall-clock timer is armed for the earliest next
// occurrence of all schedules; no polling, no timer per workflow. Each fire is committed with the
// execution it starts (store: schedules.handled), so a restart neither fires twice nor forgets what
// it missed; missed occurrences follow the rule's `catchup`.
#include "daemon/exec/submit.hpp"
#include "daemon/registry/registry.hpp"
#include "daemon/schedule/lateness.hpp"
#include "daemon/schedule/rules.hpp"
#include "daemon/store/db.hpp"
#include "loop/wall_timer.hpp"

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace luaflow::schedule {

// Occurrences more than this far behind the clock when noticed were passed over (the wall clock
// stepped forward, the machine slept): they follow `catchup` like those missed while the daemon was down.
inline constexpr UnixSeconds kPassedOver = 60;
// A workflow due within this long has its Lua state made when its timer is armed (Submitter::prepare).
inline constexpr std::int64_t kPrepareAheadNs = 30'000'000'000;
// The timer first wakes this long before an instant and gets the fire's path ready (warm_up), then
// wakes at the instant. A CPU idle since the last fire wakes late and runs its first turn several times
// slower (bench/schedule_bench.py: a bare timerfd p50 0.5 ms late, a cold fire 2 to 5 ms of work on
// this machine kind); a wake-up 3 ms before takes both off the fire.
inline constexpr std::int64_t kWarmAheadNs = 3'000'000;
// At most this many catch-up runs per rule and decision; older missed occurrences are dropped.
inline constexpr std::int64_t kMaxCatchupRuns = 100;
// Missed occurrences counted one by one up to this many; beyond, the count says "more than".
inline constexpr std::int64_t kMaxCounted = 100'000;

class Scheduler {
  public:
    using Clock = std::function<std::int64_t()>; // wall clock, nanoseconds since the epoch

    // `process_started_ns`: when the daemon process started, on the wall clock (default: now).
    // Occurrences before it were missed and follow `catchup`; later ones fire at start, late (SPEC 4).
    Scheduler(uv_loop_t* loop, store::Db& db, registry::Registry& registry, exec::Submitter& executor,
              Clock clock = {}, std::optional<std::int64_t> process_started_ns = std::nullopt);
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    // Reads every workflow's rules, handles what was missed while the daemon was down, arms the timer.
    void start();
    // The workflow's definition changed or went away, or it was enabled or disabled. An enable makes
    // the occurrences before it missed (SPEC 4); otherwise those before the current second are.
    void refresh(const std::string& workflow);
    // Fires nothing more (shutdown).
    void stop();

    // The next `n` occurrences after `after` (default: now), each in its rule's zone, RFC 3339.
    Result<std::vector<std::string>> upcoming(const std::string& workflow, int n,
                                              std::optional<UnixSeconds> after) const;
    // When the workflow fires next; nothing when it is disabled or has no schedule.
    std::optional<UnixSeconds> next_fire(const std::string& workflow) const;
    // The rules as {"rrule"|"cron","tz","dtstart","catchup"}, or null without a schedule.
    nlohmann::json describe(const std::string& workflow) const;
    const Lateness& lateness() const { return lateness_; }

    // For tests: runs what the timer would run now.
    void fire_due() { on_fire(); }

  private:
    struct RuleState {
        Rule rule;
        std::shared_ptr<const RecurrenceSpec> spec;
        std::unique_ptr<Cursor> cursor;
        std::optional<UnixSeconds> next;
        UnixSeconds handled = 0;
    };
    struct WorkflowState {
        std::shared_ptr<const scripting::WorkflowDef> def;
        std::vector<RuleState> rules;
        bool enabled = true;
        std::optional<UnixSeconds> queued_at; // its entry in due_
        std::int64_t armed_ns = 0;            // when queued_at was computed
    };
    struct Missed {
        std::int64_t count = 0;
        bool more = false; // more than kMaxCounted
        UnixSeconds oldest = 0;
        std::vector<UnixSeconds> newest; // the newest kMaxCatchupRuns, oldest first
    };

    void refresh(const std::string& workflow, std::optional<std::int64_t> missed_before_ns);
    void on_fire();
    void on_clock_set();
    // The early wake-up before `at` (kWarmAheadNs): what the fires of `at` will touch is made ready.
    void warm_up(UnixSeconds at);
    // Starts the run of `at` (or records why not), stamped `woke_ns`, when the timer woke for it; the
    // rules due move on afterwards, in on_fire().
    void fire(WorkflowState& w, UnixSeconds at, std::int64_t woke_ns);
    void catch_up(WorkflowState& w, RuleState& r, UnixSeconds until);
    Missed missed_between(const RuleState& r, UnixSeconds after, UnixSeconds before) const;
    bool launch(WorkflowState& w, UnixSeconds at, const RuleState& r, bool catchup,
                std::optional<std::int64_t> woke_ns = std::nullopt);
    void drop(WorkflowState& w, std::int64_t count, const std::string& message);
    void requeue(const std::string& id, WorkflowState& w);
    void arm();
    std::int64_t now_ns() const;

    store::Db& db_;
    registry::Registry& registry_;
    exec::Submitter& executor_;
    Clock clock_;
    std::int64_t process_started_ns_;
    std::map<std::string, WorkflowState> workflows_;
    std::set<std::pair<UnixSeconds, std::string>> due_; // (next occurrence, workflow)
    loop::WallTimer timer_;
    Lateness lateness_;
    std::optional<UnixSeconds> warmed_for_; // the instant the last early wake-up was for
    bool stopped_ = false;
};

} // namespace luaflow::schedule
