#pragma once
// Virtual time for `luaflowctl test --fast` (SPEC 13): sleeps, retry delays and timeouts elapse at once,
// in the order they would have, while subprocesses and HTTP still take real time.
//
// While a VirtualTime is installed on a loop, the loop's loop::Timers do not keep it running. run() runs
// the loop; whenever only such timers are left (uv_run returns: nothing real is in flight), it moves the
// clock every reader shares (shift_clock) to the earliest of them, which then fires. A timer still fires
// by real time when real work keeps the loop busy past it, so the order of events is the real one. The
// loop's own timers (curl's, a child's kill timer) stay real: they time real work.
#include <uv.h>

#include <cstdint>
#include <functional>
#include <set>

namespace luaflow::loop {

class Timer;

class VirtualTime {
  public:
    // Installs it on `loop` (one at a time per process): Timers started from now on are its own.
    explicit VirtualTime(uv_loop_t* loop);
    ~VirtualTime();
    VirtualTime(const VirtualTime&) = delete;
    VirtualTime& operator=(const VirtualTime&) = delete;

    // The clock installed on `loop`, if any.
    static VirtualTime* of(uv_loop_t* loop);

    // Runs the loop until `done()` holds when it returns (uv_stop, or nothing left); true then. False
    // when nothing is left to wait for before that: no real work and no timer but background ones.
    bool run(const std::function<bool()>& done);

    // How far the clock has been moved so far.
    std::int64_t skipped_ms() const { return skipped_ms_; }

  private:
    friend class Timer;
    void armed(Timer* t);
    void disarmed(Timer* t);
    // Moves the clock to the earliest armed timer and re-arms them all from there; false when none
    // but background timers is armed.
    bool skip();

    uv_loop_t* loop_;
    std::set<Timer*> armed_;
    std::int64_t skipped_ms_ = 0;
};

} // namespace luaflow::loop
