#include "loop/wall_timer.hpp"

#include "common/log.hpp"
#include "common/time_format.hpp"
#include "loop/virtual_time.hpp"

#include <algorithm>

#include <cerrno>
#include <cstring>
#include <sys/timerfd.h>
#include <unistd.h>

namespace luaflow::loop {

WallTimer::WallTimer(uv_loop_t* loop, std::function<void()> on_fire, std::function<void()> on_clock_set)
    : loop_(loop), on_fire_(std::move(on_fire)), on_clock_set_(std::move(on_clock_set)) {
    fd_ = ::timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd_ < 0) {
        log::error("timerfd_create: %s; schedules will not fire", std::strerror(errno));
        return;
    }
    auto* box = new Box();
    box->owner = this;
    uv_poll_init(loop, &box->uv, fd_);
    poll_ = UvHandle<Box>(box);
    uv_poll_start(&box->uv, UV_READABLE, [](uv_poll_t* p, int, int) {
        if (auto* b = box_of<Box>(p)) b->owner->on_readable();
    });
    // An idle daemon with schedules still has work to do; but the timer alone must not keep a loop
    // alive that is being shut down.
    uv_unref(poll_.handle());
}

WallTimer::~WallTimer() {
    poll_.reset(); // libuv stops polling before the fd is closed (uv_poll_t must not outlive its fd use)
    if (fd_ >= 0) ::close(fd_);
}

void WallTimer::arm_at(std::int64_t unix_ns) {
    if (VirtualTime::of(loop_)) {
        disarm();
        if (!virtual_timer_) virtual_timer_ = std::make_unique<Timer>(loop_);
        std::int64_t ms = (unix_ns + 999'999) / 1'000'000 - now_unix_ms(); // not a millisecond early
        virtual_timer_->start(static_cast<std::uint64_t>(std::max<std::int64_t>(0, ms)),
                              [this] { on_fire_(); });
        return;
    }
    if (fd_ < 0) return;
    itimerspec spec{};
    // 0 would disarm: an instant at or before the epoch means "now".
    if (unix_ns <= 0) unix_ns = 1;
    spec.it_value.tv_sec = unix_ns / 1'000'000'000;
    spec.it_value.tv_nsec = unix_ns % 1'000'000'000;
    if (::timerfd_settime(fd_, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &spec, nullptr) != 0)
        log::error("timerfd_settime: %s", std::strerror(errno));
}

void WallTimer::disarm() {
    if (virtual_timer_) virtual_timer_->stop();
    if (fd_ < 0) return;
    itimerspec spec{};
    ::timerfd_settime(fd_, 0, &spec, nullptr);
}

void WallTimer::on_readable() {
    std::uint64_t expirations = 0;
    ssize_t n = ::read(fd_, &expirations, sizeof expirations);
    if (n == static_cast<ssize_t>(sizeof expirations)) {
        on_fire_();
    } else if (n < 0 && errno == ECANCELED) {
        // timerfd_create(2): the realtime clock underwent a discontinuous change.
        on_clock_set_();
    }
    // EAGAIN: re-armed between the wake-up and the read; nothing is due.
}

} // namespace luaflow::loop
