#include "daemon/schedule/recurrence.hpp"

#include "daemon/schedule/calendar_days.hpp"

#include <climits>
#include <map>
#include <mutex>
#include <sstream>

namespace luaflow::schedule {

namespace {

// libical's own COUNT keeps iterating from DTSTART; anything past this many steps is not a schedule.
constexpr std::int64_t kMaxSteps = 5'000'000;
// With an INTERVAL libical ignores, a series' own time comes within some INTERVAL (hours' worth) of
// libical's times when the rule names one at all; this many in a row (plus 3600 per INTERVAL step) that
// are not its own: it names none (FREQ=HOURLY;INTERVAL=2;BYHOUR=9 from 10:00).
constexpr std::int64_t kMaxForeignRun = 100'000;
// The largest change of UTC offset at one transition (Antarctica/Troll: 2 h).
constexpr std::int64_t kOffsetWindow = 2 * 3600;
// Parsed rule texts and first occurrences kept, each up to this many (then all are dropped and the
// keeping starts over): ~2.6 KB a rule, ~200 bytes a first occurrence.
constexpr std::size_t kMaxKeptRules = 256;
constexpr std::size_t kMaxKeptFirsts = 1024;

// libical's functions (daemon/tz/ical_api.hpp): loaded, since a rule was parsed.
const tz::IcalApi& ical() {
    return tz::ical();
}

icaltimetype floating(std::int64_t naive) {
    return ical().time_from_timet_with_zone(static_cast<time_t>(naive), 0, nullptr);
}

std::int64_t naive_of(const icaltimetype& t) {
    return tz::naive_seconds({t.year, t.month, t.day, t.hour, t.minute, t.second});
}

bool accepted(const std::string& text) {
    ical().error_clear_errno();
    icalrecurrencetype r = ical().recurrencetype_from_string(text.c_str());
    bool ok = r.freq != ICAL_NO_RECURRENCE && *ical().errno_return() == ICAL_NO_ERROR;
    ical().error_clear_errno();
    return ok;
}

// The fixed length of a period of the rule, in naive seconds, for FREQ up to WEEKLY; 0 otherwise.
std::int64_t period_seconds(const icalrecurrencetype& r) {
    switch (r.freq) {
    case ICAL_SECONDLY_RECURRENCE:
        return r.interval;
    case ICAL_MINUTELY_RECURRENCE:
        return 60LL * r.interval;
    case ICAL_HOURLY_RECURRENCE:
        return 3600LL * r.interval;
    case ICAL_DAILY_RECURRENCE:
        return 86400LL * r.interval;
    case ICAL_WEEKLY_RECURRENCE:
        return 7 * 86400LL * r.interval;
    default:
        return 0;
    }
}

bool has(const short* by) {
    return by[0] != ICAL_RECURRENCE_ARRAY_MAX;
}

// libical 3.0.16 skips the first BY value of the start's day, hour or minute when the start does not
// match a sub-daily rule (FREQ=HOURLY;BYHOUR=8,9,10;BYMINUTE=0 from 07:05 begins at 09:00;
// FREQ=MINUTELY;BYMINUTE=15,30 from 00:00 at 00:30). The naive seconds that must lie between where
// libical starts and the first time that counts: a whole day when the rule names hours, days or months,
// else an hour (BYMINUTE), else a minute (BYSECOND). 0: the rule has no BY part, or is not sub-daily.
std::int64_t skip_window(const icalrecurrencetype& r) {
    if (r.freq != ICAL_SECONDLY_RECURRENCE && r.freq != ICAL_MINUTELY_RECURRENCE &&
        r.freq != ICAL_HOURLY_RECURRENCE)
        return 0;
    if (has(r.by_hour) || has(r.by_day) || has(r.by_month_day) || has(r.by_year_day) || has(r.by_week_no) ||
        has(r.by_month) || has(r.by_set_pos))
        return 86400;
    if (has(r.by_minute)) return r.freq == ICAL_SECONDLY_RECURRENCE ? 3600 : 86400;
    if (has(r.by_second)) return r.freq == ICAL_SECONDLY_RECURRENCE ? 60 : 86400;
    return 0;
}

// The length of FREQ's unit for a sub-daily rule whose INTERVAL libical 3.0.16 ignores: with a BY limit
// of that unit or a coarser one it yields every matching unit (FREQ=HOURLY;INTERVAL=2;BYHOUR=1,2,3 gives
// 01:00, 02:00, 03:00, not 01:00, 03:00). 0 otherwise.
std::int64_t ignored_interval_unit(const icalrecurrencetype& r) {
    if (r.interval <= 1) return 0;
    switch (r.freq) {
    case ICAL_HOURLY_RECURRENCE:
        return has(r.by_hour) ? 3600 : 0;
    case ICAL_MINUTELY_RECURRENCE:
        return has(r.by_hour) || has(r.by_minute) ? 60 : 0;
    case ICAL_SECONDLY_RECURRENCE:
        return has(r.by_hour) || has(r.by_minute) || has(r.by_second) ? 1 : 0;
    default:
        return 0;
    }
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

// The same series in a form libical 3.0.16 expands right (RFC 5545 defines both the same way).
icalrecurrencetype equivalent_for_libical(icalrecurrencetype r) {
    // FREQ=DAILY with a negative BYMONTHDAY yields nothing; with INTERVAL=1 every day is a candidate,
    // which is what FREQ=MONTHLY with the same BY parts expands.
    if (r.freq == ICAL_DAILY_RECURRENCE && r.interval == 1 && !has(r.by_set_pos)) {
        for (int i = 0; i < ICAL_BY_MONTHDAY_SIZE && r.by_month_day[i] != ICAL_RECURRENCE_ARRAY_MAX; ++i)
            if (r.by_month_day[i] < 0) {
                r.freq = ICAL_MONTHLY_RECURRENCE;
                break;
            }
    }
    // FREQ=YEARLY with BYMONTHDAY and no BYMONTH (nor BYWEEKNO, BYYEARDAY) takes only DTSTART's month;
    // the RFC means every month.
    if (r.freq == ICAL_YEARLY_RECURRENCE && has(r.by_month_day) && !has(r.by_month) && !has(r.by_week_no) &&
        !has(r.by_year_day)) {
        for (int m = 1; m <= 12; ++m)
            r.by_month[m - 1] = static_cast<short>(m);
        r.by_month[12] = ICAL_RECURRENCE_ARRAY_MAX;
    }
    return r;
}

Result<RRule> parse_uncached(const std::string& text) {
    std::string rule = text.rfind("RRULE:", 0) == 0 ? text.substr(6) : text;
    if (accepted(rule)) {
        icalrecurrencetype r = ical().recurrencetype_from_string(rule.c_str());
        if (auto none = days_never_matched(r))
            return make_error(ErrorCode::invalid, rule + " never fires: " + *none);
        return std::make_shared<const icalrecurrencetype>(equivalent_for_libical(r));
    }
    // libical says only "malformed": find the part that makes it so, to name it.
    std::vector<std::string> parts;
    std::stringstream ss(rule);
    for (std::string p; std::getline(ss, p, ';');)
        if (!p.empty()) parts.push_back(p);
    std::string freq;
    for (const auto& p : parts)
        if (p.rfind("FREQ=", 0) == 0) freq = p;
    if (freq.empty()) return make_error(ErrorCode::invalid, rule + " is not a valid RRULE: it has no FREQ");
    if (!accepted(freq)) return make_error(ErrorCode::invalid, rule + " is not a valid RRULE: bad " + freq);
    std::string so_far = freq;
    for (const auto& p : parts) {
        if (p == freq) continue;
        if (p.find('=') == std::string::npos || !accepted(freq + ";" + p))
            return make_error(ErrorCode::invalid, rule + " is not a valid RRULE: bad part " + p);
        if (!accepted(so_far + ";" + p))
            return make_error(ErrorCode::invalid, rule + " is not a valid RRULE: " + p + " conflicts with " +
                                                      so_far.substr(freq.size() + (so_far == freq ? 0 : 1)));
        so_far += ";" + p;
    }
    return make_error(ErrorCode::invalid, rule + " is not a valid RRULE (libical refuses it)");
}

// What was kept, and how often it was used. Schedules are read and expanded on the loop thread; the
// mutex makes the keeping safe from any other (a lookup is one map search).
struct Kept {
    std::mutex mutex;
    std::map<std::string, Result<RRule>> rules;
    std::map<std::pair<std::string, UnixSeconds>, std::optional<UnixSeconds>> firsts;
    KeptCounts counts;
};

Kept& kept() {
    static Kept k;
    return k;
}

} // namespace

Result<RRule> parse_rrule(const std::string& text) {
    if (auto api = tz::ical_api(); !api) return api.error();
    Kept& k = kept();
    {
        std::lock_guard lock(k.mutex);
        if (auto it = k.rules.find(text); it != k.rules.end()) return it->second;
    }
    Result<RRule> parsed = parse_uncached(text);
    std::lock_guard lock(k.mutex);
    ++k.counts.rules_parsed;
    if (k.rules.size() >= kMaxKeptRules) k.rules.clear();
    k.rules.emplace(text, parsed);
    return parsed;
}

KeptCounts kept_counts() {
    std::lock_guard lock(kept().mutex);
    return kept().counts;
}

std::optional<UnixSeconds> first_after(const std::shared_ptr<const RecurrenceSpec>& spec, UnixSeconds after) {
    Kept& k = kept();
    if (!spec->key.empty()) {
        std::lock_guard lock(k.mutex);
        if (auto it = k.firsts.find({spec->key, after}); it != k.firsts.end()) {
            ++k.counts.firsts_reused;
            return it->second;
        }
    }
    Cursor c(spec, after, false);
    const std::optional<UnixSeconds> first = c.next();
    if (spec->key.empty()) return first;
    std::lock_guard lock(k.mutex);
    ++k.counts.firsts_computed;
    if (k.firsts.size() >= kMaxKeptFirsts) k.firsts.clear();
    k.firsts.emplace(std::make_pair(spec->key, after), first);
    return first;
}

Cursor::Cursor(std::shared_ptr<const RecurrenceSpec> spec, UnixSeconds after)
    : Cursor(std::move(spec), after, true) {}

Cursor::Cursor(std::shared_ptr<const RecurrenceSpec> spec, UnixSeconds after, bool kept)
    : spec_(std::move(spec)), kept_(kept && !spec_->key.empty()), after_(after) {}

void Cursor::open_sources() {
    opened_ = true;
    // Start just before `after` in local time; near a transition, earlier local times may come later.
    const std::int64_t margin = spec_->zone.steady_around(after_, kOffsetWindow) ? 1 : kOffsetWindow + 1;
    const std::int64_t seek = tz::naive_seconds(spec_->zone.local(after_)) - margin;
    const std::int64_t dtstart = tz::naive_seconds(spec_->dtstart);
    for (const RRule& parsed : spec_->rules) {
        icalrecurrencetype rule = *parsed;
        // COUNT is counted here (pull()), over the union and without the duplicates libical yields for
        // some matching DTSTARTs (FREQ=HOURLY;BYHOUR=...), which it counts twice.
        if (rule.count > 0) count_ = rule.count;
        const bool counted = rule.count > 0;
        rule.count = 0;
        if (!split_weekly(rule, seek, dtstart, counted)) open(rule, seek, dtstart, std::nullopt, counted);
    }
}

bool Cursor::split_weekly(const icalrecurrencetype& rule, std::int64_t seek, std::int64_t dtstart,
                          bool counted) {
    // libical 3.0.16 misplaces the weeks of FREQ=WEEKLY;INTERVAL>1 when a BYDAY day comes before
    // DTSTART's weekday in libical's idea of the week (a Sunday, or any WKST but MO); it is right when
    // DTSTART falls on the one BYDAY day. So each day becomes a rule of its own that starts on that
    // day of DTSTART's week (by WKST), and times before DTSTART are dropped.
    if (rule.freq != ICAL_WEEKLY_RECURRENCE || rule.interval <= 1 ||
        rule.by_day[0] == ICAL_RECURRENCE_ARRAY_MAX || rule.by_set_pos[0] != ICAL_RECURRENCE_ARRAY_MAX)
        return false;
    const std::int64_t day = dtstart >= 0 ? dtstart / 86400 : -((-dtstart + 86399) / 86400);
    const std::int64_t time_of_day = dtstart - day * 86400;
    const int weekday = static_cast<int>(((day + 4) % 7 + 7) % 7) + 1; // 1970-01-01 was a Thursday; SU = 1
    const int wkst = rule.week_start == ICAL_NO_WEEKDAY ? ICAL_MONDAY_WEEKDAY : rule.week_start;
    const std::int64_t week_start = day - (weekday - wkst + 7) % 7;
    // Each day's rule starts at midnight, so the times of DTSTART that the rule leaves open are spelled out.
    icalrecurrencetype base = rule;
    auto fill = [](short* by, std::int64_t value) {
        if (by[0] == ICAL_RECURRENCE_ARRAY_MAX) {
            by[0] = static_cast<short>(value);
            by[1] = ICAL_RECURRENCE_ARRAY_MAX;
        }
    };
    fill(base.by_hour, time_of_day / 3600);
    fill(base.by_minute, time_of_day / 60 % 60);
    fill(base.by_second, time_of_day % 60);
    for (int i = 0; i < ICAL_BY_DAY_SIZE && rule.by_day[i] != ICAL_RECURRENCE_ARRAY_MAX; ++i) {
        const int d = ical().recurrencetype_day_day_of_week(rule.by_day[i]);
        icalrecurrencetype one = base;
        one.by_day[0] = static_cast<short>(d);
        one.by_day[1] = ICAL_RECURRENCE_ARRAY_MAX;
        one.week_start = ICAL_MONDAY_WEEKDAY;
        open(one, seek, (week_start + (d - wkst + 7) % 7) * 86400, dtstart, counted);
    }
    return true;
}

Cursor::~Cursor() {
    for (auto& s : sources_)
        if (s.it) ical().recur_iterator_free(s.it);
}

void Cursor::open(const icalrecurrencetype& rule_in, std::int64_t seek_naive, std::int64_t dtstart,
                  std::optional<std::int64_t> not_before, bool counted) {
    icalrecurrencetype rule = rule_in;
    Source s;
    s.days = DayFilter::take(rule);
    // libical ignores this INTERVAL: it expands every unit, and the ones not in the series are dropped.
    if (const std::int64_t unit = ignored_interval_unit(rule)) {
        s.unit = unit;
        s.interval = rule.interval;
        s.origin = floor_div(dtstart, unit);
        rule.interval = 1;
    }
    // RFC 5545: with a zoned DTSTART, UNTIL is UTC. libical compares it with our floating times as if
    // it were a wall-clock time, so give it the zone's wall-clock time.
    std::optional<UnixSeconds> until;
    if (!ical().time_is_null_time(rule.until) && !rule.until.is_date && ical().time_is_utc(rule.until)) {
        until = static_cast<UnixSeconds>(ical().time_as_timet(rule.until));
        // Later by the widest offset change: near a fall-back, local times after UNTIL's wall-clock
        // time can still be instants before it. The instant test in pull() is the exact one.
        rule.until = floating(tz::naive_seconds(spec_->zone.local(*until)) + kOffsetWindow);
    }
    std::int64_t start = dtstart;
    bool use_set_start = false;
    if (!counted && seek_naive > dtstart) {
        if (std::int64_t period = period_seconds(rule)) {
            // Fixed-length periods: start the series anew at the last period boundary before the seek.
            // libical's set_start aligns sub-daily intervals by the hour/minute/second field alone, which
            // is wrong when the interval does not divide the day (FREQ=HOURLY;INTERVAL=5).
            // A period or more earlier than needed (and a day for sub-daily rules): libical skips the
            // first BY value of the first period when the start does not match the rule
            // (FREQ=HOURLY;BYHOUR=11,12 started at 10:30 begins at 12:30), so that period must lie
            // before `after`.
            const std::int64_t margin =
                std::max<std::int64_t>(2 * period, rule.freq == ICAL_SECONDLY_RECURRENCE
                                                       ? std::max<std::int64_t>(3600, skip_window(rule))
                                                       : 86400);
            if (seek_naive - margin > dtstart)
                start = dtstart + (seek_naive - margin - dtstart) / period * period;
        } else {
            use_set_start = true;     // MONTHLY, YEARLY: libical aligns months and years itself
            seek_naive -= 40 * 86400; // a period earlier, for the same reason as above
        }
    }
    if (start == dtstart) {
        // The series' own start, which the rule need not match (the default start is the load minute):
        // libical starts whole periods earlier, so that what it skips lies before DTSTART's day (hour,
        // minute), and those earlier times are dropped (not counted).
        if (const std::int64_t window = skip_window(rule)) {
            const std::int64_t period = period_seconds(rule);
            start = dtstart - (window + period - 1) / period * period; // whole days when they can be
            not_before = std::max(not_before.value_or(dtstart), dtstart);
        }
    }
    s.until = until;
    s.not_before = not_before;
    s.rule = rule;
    s.first_start = start;
    s.it = ical().recur_iterator_new(rule, floating(start));
    if (!s.it) return;
    if (use_set_start && !ical().recur_iterator_set_start(s.it, floating(seek_naive))) {
        ical().recur_iterator_free(s.it);
        s.it = ical().recur_iterator_new(rule, floating(dtstart));
        if (!s.it) return;
    }
    advance(s);
    sources_.push_back(s);
}

void Cursor::advance(Source& s) {
    s.head.reset();
    if (!s.it) return;
    icaltimetype t = ical().recur_iterator_next(s.it);
    if (ical().time_is_null_time(t)) {
        ical().recur_iterator_free(s.it);
        s.it = nullptr;
        return;
    }
    s.head = naive_of(t);
}

void Cursor::skip_to_day(Source& s, std::int64_t day) {
    if (s.it) ical().recur_iterator_free(s.it);
    s.it = nullptr;
    s.head.reset();
    // As open() seeks: from a period boundary far enough before the day that libical's skipped first
    // BY value lies before it.
    const std::int64_t from = day * 86400;
    const std::int64_t period = period_seconds(s.rule);
    const std::int64_t margin = std::max<std::int64_t>(
        2 * period,
        s.rule.freq == ICAL_SECONDLY_RECURRENCE ? std::max<std::int64_t>(3600, skip_window(s.rule)) : 86400);
    std::int64_t start = s.first_start;
    if (period > 0 && from - margin > start) start += (from - margin - start) / period * period;
    s.it = ical().recur_iterator_new(s.rule, floating(start));
    do
        advance(s);
    while (s.head && *s.head < from);
}

bool Cursor::Source::own(std::int64_t naive) const {
    return (!not_before || naive >= *not_before) &&
           (!unit || (floor_div(naive, unit) - origin) % interval == 0);
}

bool Cursor::pull() {
    Source* best = nullptr;
    for (auto& s : sources_)
        if (s.head && (!best || *s.head < *best->head)) best = &s;
    if (!best) return false;
    const std::int64_t naive = *best->head;
    if (best->days) {
        const std::int64_t day = floor_div(naive, 86400);
        if (!best->days->matches(day)) {
            // A day the rule leaves out: on to the next one it allows, not through each time of those
            // between. The times skipped are not the series' own, so COUNT is not concerned.
            if (auto next_day = best->days->next(day)) {
                skip_to_day(*best, *next_day);
            } else {
                if (best->it) ical().recur_iterator_free(best->it);
                best->it = nullptr;
                best->head.reset();
            }
            return true;
        }
    }
    const std::optional<UnixSeconds> until = best->until;
    const bool foreign = !best->own(naive); // not the series' own time: neither counted nor listed
    best->foreign_run = foreign ? best->foreign_run + 1 : 0;
    advance(*best);
    if (best->unit &&
        best->foreign_run > kMaxForeignRun + 3600 * best->interval) { // the steps never reach a listed time
        if (best->it) ical().recur_iterator_free(best->it);
        best->it = nullptr;
        best->head.reset();
    }
    if (naive == pulled_naive_) return true; // libical yields some matching DTSTARTs twice
    // COUNT counts the series' local times in their order (RFC 5545), before a gap merges two of them.
    if (count_ && !foreign && ++counted_ > count_) {
        for (auto& src : sources_)
            src.head.reset();
        return false;
    }
    pulled_naive_ = naive;
    const UnixSeconds instant = spec_->zone.instant(tz::from_naive_seconds(naive));
    if (!foreign && (!until || instant <= *until)) pending_.insert({instant, naive});
    return true;
}

std::optional<UnixSeconds> Cursor::next() {
    if (kept_) {
        // The first occurrence as kept for the series and instant; the ones after it come from sources
        // opened just after it, when asked for (occurrences strictly after an instant are the same set
        // whichever earlier instant a cursor started from).
        kept_ = false;
        const std::optional<UnixSeconds> first = first_after(spec_, after_);
        if (!first) {
            opened_ = true; // no sources: nothing, now and later
            return std::nullopt;
        }
        after_ = *first;
        return first;
    }
    if (!opened_) open_sources();
    for (std::int64_t steps = 0; steps < kMaxSteps; ++steps) {
        if (pending_.empty()) {
            if (!pull()) return std::nullopt;
            continue;
        }
        const Pending p = *pending_.begin();
        // A later local time may still map to an earlier instant near a transition (02:45 in a gap
        // becomes 03:45, after a real 03:40): p is final once a later local time has been seen and no
        // transition is near, or once the local times have moved past the widest offset change.
        const bool ready =
            ended_ || (pulled_naive_ > p.naive && (pulled_naive_ >= p.naive + kOffsetWindow ||
                                                   spec_->zone.steady_around(p.instant, kOffsetWindow)));
        if (!ready) {
            if (!pull()) ended_ = true;
            continue;
        }
        pending_.erase(pending_.begin());
        if (last_ && p.instant <= *last_) continue; // each instant once: a gap, two rules may name it
        last_ = p.instant;
        // RFC 5545: EXDATE takes instants out of the set COUNT made.
        if (p.instant <= after_ || spec_->exdates.count(p.instant)) continue;
        return p.instant;
    }
    return std::nullopt;
}

} // namespace luaflow::schedule
