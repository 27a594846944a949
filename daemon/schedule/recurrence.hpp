#pragma once
// A recurrence: RRULEs (RFC 5545) expanded by libical in wall-clock time in one zone, each local time
// turned into an instant by RFC 5545 3.3.5 (Zone::instant), with EXDATEs taken out. libical converting
// a zoned DTSTART itself gets DST wrong (PEERS.md), so libical only ever sees floating times.
//
// Workflows share rules ("FREQ=DAILY;BYHOUR=3"), and at start-up every scheduled workflow asks for its
// series' first occurrence after the same instant: a rule text is parsed once, and a series' first
// occurrence after an instant is computed once (~100 us of libical each), then reused.
#include "daemon/schedule/calendar_days.hpp"
#include "daemon/tz/ical_api.hpp"
#include "daemon/tz/zone.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace luaflow::schedule {

// Rules are read and expanded in their zone (daemon/tz, below the engine: reports show times in it too).
using tz::LocalTime;
using tz::Zone;

// A parsed RRULE, shared by every rule and recurrence with its text (an icalrecurrencetype is 2.6 KB).
using RRule = std::shared_ptr<const icalrecurrencetype>;

// One RRULE checked by libical; an error names the offending part ("BYHOUR=25"), or libical.so.3 and the
// loader's reason when libical cannot be loaded. Each text is parsed once (the result is kept).
Result<RRule> parse_rrule(const std::string& text);

struct RecurrenceSpec {
    std::vector<RRule> rules; // their union (a cron expression may need two)
    LocalTime dtstart;        // in `zone`
    Zone zone;
    std::set<UnixSeconds> exdates;
    // Names the series (rules, zone, dtstart, exdates) for the first occurrences kept; "": none are.
    std::string key;
};

// Occurrences strictly after a given instant, ascending, each instant once. Nothing is expanded before
// the first next(), which gives the occurrence kept for the series (its key) and instant when there is
// one; libical's iterators are made only when more is asked (the scheduler's next after a fire).
class Cursor {
  public:
    Cursor(std::shared_ptr<const RecurrenceSpec> spec, UnixSeconds after);
    ~Cursor();
    Cursor(const Cursor&) = delete;
    Cursor& operator=(const Cursor&) = delete;

    std::optional<UnixSeconds> next();

  private:
    Cursor(std::shared_ptr<const RecurrenceSpec> spec, UnixSeconds after, bool kept);
    void open_sources();
    struct Source {
        icalrecur_iterator* it = nullptr;
        std::optional<std::int64_t> head;       // the next local time it yields, as naive seconds
        std::optional<UnixSeconds> until;       // UNTIL as an instant: a local time in a gap may pass it
        std::optional<std::int64_t> not_before; // naive: earlier times are not the series' own
        // When libical expands the rule with INTERVAL=1 for us: only every `interval`-th `unit` (naive
        // seconds) counted from `origin` is the series' own.
        std::int64_t unit = 0, interval = 1, origin = 0;
        std::int64_t foreign_run = 0; // times in a row that were not the series' own
        // A sub-daily rule's day-level limits, kept out of libical (calendar_days.hpp). Past a day they
        // leave out, the iterator is made anew at the next day they allow: libical's rule, and the
        // start it was first made at (on the series' grid of periods).
        std::optional<DayFilter> days;
        icalrecurrencetype rule{};
        std::int64_t first_start = 0;
        bool own(std::int64_t naive) const;
    };
    struct Pending {
        UnixSeconds instant;
        std::int64_t naive;
        auto operator<=>(const Pending&) const = default;
    };
    void open(const icalrecurrencetype& rule, std::int64_t seek_naive, std::int64_t dtstart,
              std::optional<std::int64_t> not_before, bool counted);
    bool split_weekly(const icalrecurrencetype& rule, std::int64_t seek, std::int64_t dtstart, bool counted);
    bool pull(); // moves the smallest source head into pending_; false when every source has ended
    void advance(Source& s);
    void skip_to_day(Source& s, std::int64_t day); // makes s's iterator anew, from that day's first time

    std::shared_ptr<const RecurrenceSpec> spec_;
    bool kept_ = true;    // the first next() may use (and fills) the first occurrences kept
    bool opened_ = false; // open_sources() ran
    std::vector<Source> sources_;
    std::set<Pending> pending_;
    std::int64_t pulled_naive_ = INT64_MIN; // the newest local time pulled
    UnixSeconds after_;
    std::optional<UnixSeconds> last_; // the newest instant of the series seen (after or not)
    int count_ = 0;                   // COUNT of the rule; 0: none
    int counted_ = 0;
    bool ended_ = false;

    friend std::optional<UnixSeconds> first_after(const std::shared_ptr<const RecurrenceSpec>& spec,
                                                  UnixSeconds after);
};

// The first occurrence of the series strictly after `after`, as Cursor(spec, after).next() gives it:
// computed once per spec->key and instant, then kept (a bounded number of them).
std::optional<UnixSeconds> first_after(const std::shared_ptr<const RecurrenceSpec>& spec, UnixSeconds after);

// What the kept results saved, since the process started: for tests and benchmarks.
struct KeptCounts {
    std::uint64_t rules_parsed = 0;    // parse_rrule calls that ran libical's parser
    std::uint64_t firsts_computed = 0; // first_after calls that expanded the series
    std::uint64_t firsts_reused = 0;   // first_after calls answered from what was kept
};
KeptCounts kept_counts();

} // namespace luaflow::schedule
