#pragma once
// One thread owns the daemon's state (STYLE 2.4). Debug builds check it where state changes, as Neovim
// keeps main_thread from uv_thread_self(); release builds compile the check away.
#include <cassert>
#include <thread>

namespace luaflow {

namespace detail {
inline std::thread::id& loop_thread_id() {
    static std::thread::id id;
    return id;
}
} // namespace detail

// Called once by the thread that runs the loop.
inline void mark_loop_thread() {
    detail::loop_thread_id() = std::this_thread::get_id();
}

inline void assert_on_loop_thread() {
    assert((detail::loop_thread_id() == std::thread::id() ||
            detail::loop_thread_id() == std::this_thread::get_id()) &&
           "touched the daemon's state off the loop thread");
}

} // namespace luaflow
