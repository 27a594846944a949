// The physical limit schedule lateness is compared with (bench/schedule_bench.py): how late a bare
// timer wakes up for a whole wall-clock instant, on the same machine, in the same run, two ways:
//   uv_timer  uv_timer_start for the milliseconds until the target, computed from
//             clock_gettime(CLOCK_REALTIME) right before arming (rounded up, so that the rounding alone
//             is not early; libuv's clock is the monotonic one, in whole milliseconds)
//   timerfd   a timerfd on CLOCK_REALTIME armed with TFD_TIMER_ABSTIME for the target, polled by a
//             uv_poll_t (what the daemon's loop/wall_timer.cpp does)
// Lateness = CLOCK_REALTIME in the callback minus the target; negative when a timer fired early
// ("early" counts those, "over_2ms" the fires 2 ms or more late).
//
//   raw_wall_timer [FIRES] [PERIOD_MS]     (defaults 60 and 100)
//
// Targets are whole multiples of PERIOD_MS of the wall clock: 1000 gives whole seconds, as the
// daemon's FREQ=SECONDLY schedules; the default 100 keeps the run short (2 x FIRES x 100 ms).
// Prints one JSON line: {"uv_timer":{...},"timerfd":{...},"fires":N,"period_ms":P,"note":...}.
#include <uv.h>

#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

std::int64_t realtime_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

struct Run {
    uv_loop_t* loop = nullptr;
    std::int64_t period_ns = 0;
    int fires = 0;
    std::int64_t target = 0; // the wall-clock instant armed for, ns since the epoch
    std::vector<std::int64_t> late;

    // Moves to the next whole period after now (and after the previous target, in case a timer fired
    // early); returns the clock reading it was computed from.
    std::int64_t next_target() {
        const std::int64_t now = realtime_ns();
        std::int64_t t = (now / period_ns + 1) * period_ns;
        if (t <= target) t = target + period_ns;
        target = t;
        return now;
    }
    bool done() const { return static_cast<int>(late.size()) >= fires; }
};

// --- (a) bare libuv timer ---------------------------------------------------------------------------

void arm_uv(uv_timer_t* t);

void on_uv_timer(uv_timer_t* t) {
    const std::int64_t at = realtime_ns();
    Run& r = *static_cast<Run*>(t->data);
    r.late.push_back(at - r.target);
    if (r.done())
        uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr);
    else
        arm_uv(t);
}

void arm_uv(uv_timer_t* t) {
    Run& r = *static_cast<Run*>(t->data);
    uv_update_time(r.loop); // the timeout counts from the loop's time: make it now, not the iteration's start
    const std::int64_t now = r.next_target();
    const auto ms = static_cast<std::uint64_t>((r.target - now + 999'999) / 1'000'000);
    uv_timer_start(t, on_uv_timer, ms, 0);
}

// --- (b) bare timerfd on CLOCK_REALTIME, TFD_TIMER_ABSTIME, polled by libuv --------------------------

struct Fd {
    Run run;
    int fd = -1;
    uv_poll_t poll{};
};

bool arm_fd(Fd& f) {
    f.run.next_target();
    itimerspec spec{};
    spec.it_value.tv_sec = static_cast<time_t>(f.run.target / 1'000'000'000);
    spec.it_value.tv_nsec = static_cast<long>(f.run.target % 1'000'000'000);
    if (::timerfd_settime(f.fd, TFD_TIMER_ABSTIME, &spec, nullptr) != 0) {
        std::perror("timerfd_settime");
        return false;
    }
    return true;
}

void on_fd_readable(uv_poll_t* p, int status, int) {
    Fd& f = *static_cast<Fd*>(p->data);
    std::uint64_t expirations = 0;
    if (status < 0 ||
        ::read(f.fd, &expirations, sizeof expirations) != static_cast<ssize_t>(sizeof expirations))
        return;
    // Read after read(2), as the daemon does before it computes how late the fire is.
    const std::int64_t at = realtime_ns();
    f.run.late.push_back(at - f.run.target);
    if (f.run.done() || !arm_fd(f)) {
        uv_poll_stop(p);
        uv_close(reinterpret_cast<uv_handle_t*>(p), nullptr);
    }
}

// --- report -----------------------------------------------------------------------------------------

std::string summary(std::vector<std::int64_t> s) {
    if (s.empty()) return "null";
    std::sort(s.begin(), s.end());
    // The same quantile as the daemon's schedule::Lateness: s[q * (n - 1)].
    auto at = [&](double q) {
        return static_cast<double>(s[static_cast<std::size_t>(q * (s.size() - 1))]) / 1e6;
    };
    const long early = std::count_if(s.begin(), s.end(), [](std::int64_t v) { return v < 0; });
    // Wake-ups the machine delayed (a vCPU not scheduled, another process on the core), not the timer.
    const long over_2ms = std::count_if(s.begin(), s.end(), [](std::int64_t v) { return v >= 2'000'000; });
    char buf[256];
    std::snprintf(
        buf, sizeof buf,
        "{\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,\"min_ms\":%.3f,\"early\":%ld,\"over_2ms\":%ld}",
        at(0.50), at(0.99), static_cast<double>(s.back()) / 1e6, static_cast<double>(s.front()) / 1e6, early,
        over_2ms);
    return buf;
}

} // namespace

int main(int argc, char** argv) {
    const int fires = argc > 1 ? std::atoi(argv[1]) : 60;
    const int period_ms = argc > 2 ? std::atoi(argv[2]) : 100;
    if (fires < 1 || period_ms < 1) {
        std::fprintf(stderr, "usage: raw_wall_timer [FIRES] [PERIOD_MS]\n");
        return 2;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);

    Run uv_run_state;
    uv_run_state.loop = &loop;
    uv_run_state.period_ns = static_cast<std::int64_t>(period_ms) * 1'000'000;
    uv_run_state.fires = fires;
    uv_timer_t timer;
    uv_timer_init(&loop, &timer);
    timer.data = &uv_run_state;
    arm_uv(&timer);
    uv_run(&loop, UV_RUN_DEFAULT);

    Fd f;
    f.run.loop = &loop;
    f.run.period_ns = uv_run_state.period_ns;
    f.run.fires = fires;
    f.fd = ::timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
    if (f.fd < 0) {
        std::perror("timerfd_create");
        return 1;
    }
    uv_poll_init(&loop, &f.poll, f.fd);
    f.poll.data = &f;
    uv_poll_start(&f.poll, UV_READABLE, on_fd_readable);
    if (!arm_fd(f)) return 1;
    uv_run(&loop, UV_RUN_DEFAULT);
    ::close(f.fd);
    uv_loop_close(&loop);

    std::string note = period_ms == 1000 ? "targets every whole wall-clock second"
                                         : "targets every " + std::to_string(period_ms) +
                                               " ms of the wall clock, not every second";
    std::printf("{\"uv_timer\":%s,\"timerfd\":%s,\"fires\":%d,\"period_ms\":%d,\"note\":\"%s\"}\n",
                summary(uv_run_state.late).c_str(), summary(f.run.late).c_str(), fires, period_ms,
                note.c_str());
    return 0;
}
