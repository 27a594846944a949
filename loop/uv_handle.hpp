#pragma once
// Owning wrappers for libuv handles (STYLE 2.6). A handle lives inside a "box" (the uv handle as the
// member `uv`, plus what its callbacks need). The box is freed in the close callback and never earlier
// (luv luv_close_cb, uvw handle.hpp); `closing` is raised first so a late callback does nothing.
#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>

namespace luaflow::loop {

template <class Box> class UvHandle {
  public:
    UvHandle() = default;
    // Takes a box whose `uv` member is already uv_*_init'ed; sets uv.data to the box.
    explicit UvHandle(Box* box) : b_(box) { b_->uv.data = b_; }
    UvHandle(UvHandle&& o) noexcept : b_(std::exchange(o.b_, nullptr)) {}
    UvHandle& operator=(UvHandle&& o) noexcept {
        if (this != &o) {
            reset();
            b_ = std::exchange(o.b_, nullptr);
        }
        return *this;
    }
    UvHandle(const UvHandle&) = delete;
    UvHandle& operator=(const UvHandle&) = delete;
    ~UvHandle() { reset(); }

    void reset() {
        if (!b_) return;
        Box* b = std::exchange(b_, nullptr);
        b->closing = true;
        uv_close(reinterpret_cast<uv_handle_t*>(&b->uv),
                 [](uv_handle_t* h) { delete static_cast<Box*>(h->data); });
    }
    Box* get() const { return b_; }
    Box* operator->() const { return b_; }
    explicit operator bool() const { return b_ != nullptr; }
    uv_handle_t* handle() const { return reinterpret_cast<uv_handle_t*>(&b_->uv); }

  private:
    Box* b_ = nullptr;
};

// Finds the box of a handle in a callback; nullptr once it is closing.
template <class Box, class H> Box* box_of(H* h) {
    auto* b = static_cast<Box*>(h->data);
    return b && !b->closing ? b : nullptr;
}

// Inits `box->uv` as a pipe (for a pipe this cannot fail) and owns it.
template <class Box> UvHandle<Box> pipe_handle(uv_loop_t* loop, Box* box) {
    uv_pipe_init(loop, &box->uv, 0);
    return UvHandle<Box>(box);
}

// The box of a handle whose one callback is a std::function it owns (Timer, Idle, Signal).
template <class H> struct CallbackBox {
    H uv;
    bool closing = false;
    std::function<void()> fn;
};

class VirtualTime;

// A one-shot or repeating timer whose callback is a std::function owned by the timer. On a loop with a
// VirtualTime (luaflowctl test --fast) it is also one of that clock's timers: see virtual_time.hpp.
class Timer {
  public:
    explicit Timer(uv_loop_t* loop);
    Timer(const Timer&) = delete;
    Timer& operator=(const Timer&) = delete;
    ~Timer();

    void start(std::uint64_t timeout_ms, std::function<void()> fn, std::uint64_t repeat_ms = 0);
    void stop();
    bool active() const;
    // Lets the loop exit while only this timer is left.
    void unref();

  private:
    friend class VirtualTime;
    using Box = CallbackBox<uv_timer_t>;
    static void on_fire(uv_timer_t* t);
    // Re-arms the libuv timer for what is left until `due_ms_` (the clock has moved); `hold` keeps the
    // loop alive until it has fired.
    void rearm(bool hold);

    UvHandle<Box> h_;
    VirtualTime* virtual_ = nullptr; // set while it is armed on a virtual clock
    std::int64_t due_ms_ = 0;        // then: when it fires, on the (moved) wall clock
    std::uint64_t repeat_ms_ = 0;
    bool background_ = false; // unref(): it never counts as something left to wait for
};

// Runs its callback at every loop turn while started (uv_idle): work spread over turns, such as the
// run queue of Lua tasks, without the loop blocking for I/O in between.
class Idle {
  public:
    explicit Idle(uv_loop_t* loop);
    Idle(const Idle&) = delete;
    Idle& operator=(const Idle&) = delete;

    void start(std::function<void()> fn);
    void stop();
    bool active() const;

  private:
    using Box = CallbackBox<uv_idle_t>;
    UvHandle<Box> h_;
};

// Runs its callback just before the loop blocks for I/O (uv_prepare), at every turn. It does not keep
// the loop alive on its own.
class Prepare {
  public:
    explicit Prepare(uv_loop_t* loop);
    Prepare(const Prepare&) = delete;
    Prepare& operator=(const Prepare&) = delete;

    void start(std::function<void()> fn);

  private:
    using Box = CallbackBox<uv_prepare_t>;
    UvHandle<Box> h_;
};

// A signal watched on the loop (uv_signal): the callback runs there, not in a signal handler. It does
// not keep the loop alive on its own.
class Signal {
  public:
    explicit Signal(uv_loop_t* loop);
    Signal(const Signal&) = delete;
    Signal& operator=(const Signal&) = delete;

    // 0, or libuv's error code (an invalid signal number).
    [[nodiscard]] int start(int signum, std::function<void()> fn);

  private:
    using Box = CallbackBox<uv_signal_t>;
    UvHandle<Box> h_;
};

// A watch of one path for changes (uv_fs_event: inotify on Linux); the callback runs on the loop at
// each change. It does not keep the loop alive on its own.
class FsWatch {
  public:
    explicit FsWatch(uv_loop_t* loop);
    FsWatch(const FsWatch&) = delete;
    FsWatch& operator=(const FsWatch&) = delete;

    // 0, or libuv's error code (UV_ENOENT: the path is gone).
    [[nodiscard]] int start(const std::string& path, std::function<void()> fn);

  private:
    using Box = CallbackBox<uv_fs_event_t>;
    UvHandle<Box> h_;
};

// A directory's changes, each with the name of the entry it concerns (inotify through uv_fs_event):
// `fn(name, events)` with UV_RENAME (created, removed, moved) and/or UV_CHANGE (written). An event of the
// directory itself (removed or moved: no event comes after it) carries the directory's own name, as
// libuv reports it.
class DirWatch {
  public:
    explicit DirWatch(uv_loop_t* loop);
    DirWatch(const DirWatch&) = delete;
    DirWatch& operator=(const DirWatch&) = delete;

    // 0, or libuv's error code (UV_ENOENT: the directory is not there).
    [[nodiscard]] int start(const std::string& dir,
                            std::function<void(const std::string& name, int events)> fn);

  private:
    struct Box {
        uv_fs_event_t uv;
        bool closing = false;
        std::function<void(const std::string&, int)> fn;
    };
    UvHandle<Box> h_;
};

} // namespace luaflow::loop
