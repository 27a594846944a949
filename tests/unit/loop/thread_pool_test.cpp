// Pool jobs: `done` on the loop after `work` on a thread; a ticket takes back work still waiting for a
// thread, and drops the `done` of work already running.
#include "loop/thread_pool.hpp"
#include "tests/unit/support/test_loop.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

using namespace luaflow;
using luaflow::testing::Loop;

namespace {

// Holds pool threads until released, so that what is queued behind them waits.
struct Gate {
    std::mutex m;
    std::condition_variable cv;
    bool open = false;
    std::atomic<int> waiting{0};
    void wait() {
        ++waiting;
        std::unique_lock lock(m);
        cv.wait(lock, [&] { return open; });
    }
    void release() {
        {
            std::lock_guard lock(m);
            open = true;
        }
        cv.notify_all();
    }
};

} // namespace

TEST_CASE("thread pool: done runs on the loop after the work") {
    Loop l;
    std::thread::id loop_thread = std::this_thread::get_id(), work_thread;
    bool done = false;
    auto queued = loop::run_in_pool(
        &l.uv, [&] { work_thread = std::this_thread::get_id(); },
        [&] {
            CHECK(std::this_thread::get_id() == loop_thread);
            done = true;
        });
    REQUIRE(queued);
    REQUIRE(l.run_until([&] { return done; }));
    CHECK(work_thread != loop_thread);
}

TEST_CASE("thread pool: a cancelled ticket takes back waiting work and drops a running job's done") {
    Loop l;
    Gate gate;
    // libuv's pool has 4 threads unless UV_THREADPOOL_SIZE says otherwise: fill every one.
    const char* size = std::getenv("UV_THREADPOOL_SIZE");
    const int threads = size ? std::atoi(size) : 4;
    int blockers_done = 0;
    std::vector<loop::PoolTicket> blockers;
    for (int i = 0; i < threads; ++i) {
        auto t = loop::run_in_pool(
            &l.uv, [&] { gate.wait(); }, [&] { ++blockers_done; });
        REQUIRE(t);
        blockers.push_back(*t);
    }
    std::atomic<bool> waiting_work_ran{false};
    bool waiting_done_ran = false;
    auto waiting = loop::run_in_pool(
        &l.uv, [&] { waiting_work_ran = true; }, [&] { waiting_done_ran = true; });
    REQUIRE(waiting);
    // Every thread is held: the last job still waits for one, and is taken back.
    REQUIRE(l.run_until([&] { return gate.waiting == threads; }, 10'000));
    waiting->cancel();
    // A job a thread is running cannot be taken back: it finishes, but its done is dropped.
    blockers[0].cancel();
    gate.release();
    REQUIRE(l.run_until([&] { return blockers_done == threads - 1; }, 10'000));
    uv_run(&l.uv, UV_RUN_DEFAULT); // every job's end has been seen
    CHECK(blockers_done == threads - 1);
    CHECK_FALSE(waiting_work_ran);
    CHECK_FALSE(waiting_done_ran);
    waiting->cancel(); // a ticket of a job that is over does nothing
}
