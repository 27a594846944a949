#pragma once
// A timer for a wall-clock instant, watched by the loop: a timerfd on CLOCK_REALTIME with
// TFD_TIMER_ABSTIME, polled by a uv_poll_t. libuv's own timers count milliseconds of the monotonic
// clock, which is wrong for "at 09:00": it stops during suspend and does not follow an NTP step, and its
// millisecond rounding alone makes a fire up to 1 ms late. systemd's calendar timers do the same.
// TFD_TIMER_CANCEL_ON_SET tells when the wall clock was set (a step), so the schedule is recomputed.
// On a loop with a VirtualTime (virtual_time.hpp) it is one of that clock's timers instead: a scheduler
// then runs through days of fires at once.
#include "loop/uv_handle.hpp"

#include <memory>

#include <cstdint>
#include <functional>

namespace luaflow::loop {

class WallTimer {
  public:
    // on_fire runs once the armed instant has come; on_clock_set when the wall clock was stepped
    // (the armed instant is then forgotten: re-arm).
    WallTimer(uv_loop_t* loop, std::function<void()> on_fire, std::function<void()> on_clock_set);
    ~WallTimer();
    WallTimer(const WallTimer&) = delete;
    WallTimer& operator=(const WallTimer&) = delete;

    // Fires at `unix_ns` (nanoseconds since the epoch, wall clock); at once when it has passed.
    void arm_at(std::int64_t unix_ns);
    void disarm();
    bool ok() const { return fd_ >= 0; }

  private:
    struct Box {
        uv_poll_t uv;
        bool closing = false;
        WallTimer* owner = nullptr;
    };
    void on_readable();

    uv_loop_t* loop_;
    int fd_ = -1;
    UvHandle<Box> poll_;
    std::unique_ptr<Timer> virtual_timer_; // armed on the virtual clock
    std::function<void()> on_fire_, on_clock_set_;
};

} // namespace luaflow::loop
