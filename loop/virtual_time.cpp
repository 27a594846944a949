#include "loop/virtual_time.hpp"

#include "common/time_format.hpp"
#include "loop/uv_handle.hpp"

#include <algorithm>
#include <limits>

namespace luaflow::loop {

namespace {
VirtualTime* installed = nullptr;
uv_loop_t* installed_loop = nullptr;
} // namespace

VirtualTime::VirtualTime(uv_loop_t* loop) : loop_(loop) {
    installed = this;
    installed_loop = loop;
}

VirtualTime::~VirtualTime() {
    for (Timer* t : armed_)
        t->virtual_ = nullptr;
    if (installed == this) {
        installed = nullptr;
        installed_loop = nullptr;
    }
}

VirtualTime* VirtualTime::of(uv_loop_t* loop) {
    return loop == installed_loop ? installed : nullptr;
}

void VirtualTime::armed(Timer* t) {
    armed_.insert(t);
    t->virtual_ = this;
}

void VirtualTime::disarmed(Timer* t) {
    armed_.erase(t);
    t->virtual_ = nullptr;
}

bool VirtualTime::skip() {
    std::int64_t earliest = std::numeric_limits<std::int64_t>::max();
    bool waited_for = false;
    for (Timer* t : armed_) {
        if (!t->active()) continue;
        earliest = std::min(earliest, t->due_ms_);
        waited_for = waited_for || !t->background_;
    }
    if (!waited_for) return false;
    std::int64_t by = earliest - now_unix_ms();
    if (by > 0) {
        shift_clock(by);
        skipped_ms_ += by;
    }
    // Every timer counts from the moved clock; the ones due now hold the loop until they have fired
    // (a loop with only unreferenced handles runs nothing).
    std::int64_t now = now_unix_ms();
    for (Timer* t : armed_)
        if (t->active()) t->rearm(t->due_ms_ <= now);
    return true;
}

bool VirtualTime::run(const std::function<bool()>& done) {
    for (;;) {
        uv_run(loop_, UV_RUN_DEFAULT);
        if (done()) return true;
        if (!skip()) return false;
    }
}

} // namespace luaflow::loop
