#include "loop/uv_handle.hpp"

#include "common/time_format.hpp"
#include "loop/virtual_time.hpp"

#include <algorithm>

namespace luaflow::loop {

Timer::Timer(uv_loop_t* loop) {
    auto* box = new Box();
    uv_timer_init(loop, &box->uv);
    h_ = UvHandle<Box>(box);
}

Timer::~Timer() {
    if (virtual_) virtual_->disarmed(this);
}

void Timer::on_fire(uv_timer_t* t) {
    Box* b = box_of<Box>(t);
    if (!b) return;
    // A copy: the callback may restart or destroy this timer.
    std::function<void()> f = b->fn;
    f();
}

void Timer::start(std::uint64_t timeout_ms, std::function<void()> fn, std::uint64_t repeat_ms) {
    uv_loop_t* loop = h_->uv.loop;
    VirtualTime* clock = VirtualTime::of(loop);
    if (clock) {
        // The clock's timer: known to it with its due time, and never what keeps the loop running
        // (when nothing else does, the clock moves to it).
        due_ms_ = now_unix_ms() + static_cast<std::int64_t>(timeout_ms);
        repeat_ms_ = repeat_ms;
        h_->fn = [this, f = std::move(fn)] {
            if (repeat_ms_ > 0) {
                due_ms_ = now_unix_ms() + static_cast<std::int64_t>(repeat_ms_);
                uv_unref(h_.handle());
            } else if (virtual_) {
                virtual_->disarmed(this);
            }
            std::function<void()> g = f; // `this` may be gone once it has run
            g();
        };
        clock->armed(this);
        uv_unref(h_.handle());
    } else {
        h_->fn = std::move(fn);
        if (!background_) uv_ref(h_.handle()); // it may have been a virtual clock's (unreferenced) before
    }
    // libuv counts from the loop's clock, read once per turn: in a long turn (thousands of actions
    // started at once) a timer armed late would fire early by the time the turn took. vDSO-cheap.
    if (timeout_ms > 0) uv_update_time(loop);
    uv_timer_start(&h_->uv, on_fire, timeout_ms, repeat_ms);
}

void Timer::rearm(bool hold) {
    std::int64_t left = std::max<std::int64_t>(0, due_ms_ - now_unix_ms());
    uv_update_time(h_->uv.loop);
    uv_timer_start(&h_->uv, on_fire, static_cast<std::uint64_t>(left), repeat_ms_);
    if (hold) uv_ref(h_.handle());
}

void Timer::stop() {
    uv_timer_stop(&h_->uv);
    if (virtual_) virtual_->disarmed(this);
}

bool Timer::active() const {
    return uv_is_active(h_.handle()) != 0;
}

void Timer::unref() {
    background_ = true;
    uv_unref(h_.handle());
}

Idle::Idle(uv_loop_t* loop) {
    auto* box = new Box();
    uv_idle_init(loop, &box->uv);
    h_ = UvHandle<Box>(box);
}

void Idle::start(std::function<void()> fn) {
    h_->fn = std::move(fn);
    uv_idle_start(&h_->uv, [](uv_idle_t* i) {
        Box* b = box_of<Box>(i);
        if (!b) return;
        std::function<void()> f = b->fn; // a copy: the callback may stop or destroy this handle
        f();
    });
}

void Idle::stop() {
    uv_idle_stop(&h_->uv);
}

bool Idle::active() const {
    return uv_is_active(h_.handle()) != 0;
}

Prepare::Prepare(uv_loop_t* loop) {
    auto* box = new Box();
    uv_prepare_init(loop, &box->uv);
    h_ = UvHandle<Box>(box);
}

void Prepare::start(std::function<void()> fn) {
    h_->fn = std::move(fn);
    uv_prepare_start(&h_->uv, [](uv_prepare_t* p) {
        if (Box* b = box_of<Box>(p)) b->fn();
    });
    uv_unref(h_.handle());
}

Signal::Signal(uv_loop_t* loop) {
    auto* box = new Box();
    uv_signal_init(loop, &box->uv);
    h_ = UvHandle<Box>(box);
}

int Signal::start(int signum, std::function<void()> fn) {
    h_->fn = std::move(fn);
    int rc = uv_signal_start(
        &h_->uv,
        [](uv_signal_t* s, int) {
            if (Box* b = box_of<Box>(s)) b->fn();
        },
        signum);
    if (rc == 0) uv_unref(h_.handle());
    return rc;
}

FsWatch::FsWatch(uv_loop_t* loop) {
    auto* box = new Box();
    uv_fs_event_init(loop, &box->uv);
    h_ = UvHandle<Box>(box);
}

int FsWatch::start(const std::string& path, std::function<void()> fn) {
    h_->fn = std::move(fn);
    int rc = uv_fs_event_start(
        &h_->uv,
        [](uv_fs_event_t* e, const char*, int, int) {
            if (Box* b = box_of<Box>(e)) b->fn();
        },
        path.c_str(), 0);
    if (rc == 0) uv_unref(h_.handle());
    return rc;
}

DirWatch::DirWatch(uv_loop_t* loop) {
    auto* box = new Box();
    uv_fs_event_init(loop, &box->uv);
    h_ = UvHandle<Box>(box);
}

int DirWatch::start(const std::string& dir, std::function<void(const std::string& name, int events)> fn) {
    h_->fn = std::move(fn);
    int rc = uv_fs_event_start(
        &h_->uv,
        [](uv_fs_event_t* e, const char* name, int events, int status) {
            Box* b = box_of<Box>(e);
            if (!b || status < 0) return;
            b->fn(name ? std::string(name) : std::string(), events);
        },
        dir.c_str(), 0);
    if (rc == 0) uv_unref(h_.handle());
    return rc;
}

} // namespace luaflow::loop
