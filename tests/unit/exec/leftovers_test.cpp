// Leftover jobs of an earlier run: found by their LUAFLOW_JOB marker (grandchildren too, and only those of
// the executions asked about), ended by SIGTERM, and by SIGKILL when they ignore it.
#include "daemon/exec/leftovers.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <fstream>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace luaflow;

extern char** environ;

namespace {

// `sh -c script` in a process group of its own, with LUAFLOW_JOB=job in its environment.
pid_t start_job(const std::string& job, const std::string& script, std::string extra = "X=1") {
    std::string marker = "LUAFLOW_JOB=" + job;
    std::vector<char*> env = {extra.data(), marker.data(), nullptr};
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    const char* argv[] = {"/bin/sh", "-c", script.c_str(), nullptr};
    pid_t pid = 0;
    REQUIRE(posix_spawn(&pid, "/bin/sh", nullptr, &attr, const_cast<char**>(argv), env.data()) == 0);
    posix_spawnattr_destroy(&attr);
    return pid;
}

std::vector<exec::Leftover> wait_for_count(const std::set<std::string>& execs, std::size_t n) {
    std::vector<exec::Leftover> found;
    for (int k = 0; k < 200 && found.size() < n; ++k) {
        found = exec::find_leftovers(execs);
        if (found.size() < n) ::usleep(10'000);
    }
    return found;
}

// The shell has run its `trap '' TERM` (SigIgn in /proc/PID/status has SIGTERM's bit): before that, a
// SIGTERM would end it at once.
bool wait_ignoring_sigterm(pid_t pid) {
    for (int k = 0; k < 500; ++k) {
        std::ifstream in("/proc/" + std::to_string(pid) + "/status");
        for (std::string line; std::getline(in, line);)
            if (line.rfind("SigIgn:", 0) == 0 &&
                (std::stoull(line.substr(7), nullptr, 16) >> (SIGTERM - 1)) & 1)
                return true;
        ::usleep(10'000);
    }
    return false;
}

void run_until_ended(std::vector<exec::Leftover> left, std::uint64_t kill_after_ms, pid_t reap) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    bool done = false;
    exec::end_leftovers(&loop, std::move(left), kill_after_ms, [&] { done = true; });
    // The test is the job's parent: it reaps the job so that it does not linger as a zombie.
    while (!done) {
        uv_run(&loop, UV_RUN_NOWAIT);
        ::waitpid(reap, nullptr, WNOHANG);
        ::usleep(5'000);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
}

} // namespace

TEST_CASE("leftovers: a job and its grandchild are found by the marker, and SIGTERM ends them") {
    pid_t job = start_job("aaaa1111/build/1", "sleep 30 & wait");
    pid_t other = start_job("bbbb2222/build/1", "sleep 30 & wait");
    auto found = wait_for_count({"aaaa1111"}, 2);
    REQUIRE(found.size() == 2);
    for (const auto& l : found) {
        CHECK(l.job == "aaaa1111/build/1");
        CHECK(l.pgid == job);
    }
    CHECK(std::any_of(found.begin(), found.end(), [&](const exec::Leftover& l) { return l.pid == job; }));
    CHECK(exec::find_leftovers({"cccc3333"}).empty());
    CHECK(exec::find_leftovers(std::set<std::string>{}).empty());
    run_until_ended(found, 10'000, job);
    CHECK(exec::find_leftovers({"aaaa1111"}).empty());
    // The other execution's job was not touched.
    CHECK(wait_for_count({"bbbb2222"}, 2).size() == 2);
    ::kill(-other, SIGKILL);
    ::waitpid(other, nullptr, 0);
}

TEST_CASE("leftovers: one that ignores SIGTERM gets SIGKILL after the grace") {
    pid_t job = start_job("dddd4444/a/2", "trap '' TERM; while :; do sleep 0.05; done");
    REQUIRE(wait_ignoring_sigterm(job));
    auto found = wait_for_count({"dddd4444"}, 1);
    REQUIRE(!found.empty());
    auto start = std::chrono::steady_clock::now();
    run_until_ended(found, 300, job);
    auto took = std::chrono::steady_clock::now() - start;
    CHECK(took >= std::chrono::milliseconds(250));
    CHECK(took < std::chrono::seconds(5));
    CHECK(exec::find_leftovers({"dddd4444"}).empty());
}

TEST_CASE("leftovers: a Slurm job on this machine is left to scancel") {
    pid_t job = start_job("eeee5555/a/1", "exec sleep 30", "SLURM_JOB_ID=12");
    pid_t plain = start_job("eeee5555/b/1", "exec sleep 30");
    // Both have exec'd (their environment is their own now) before the scan is asked.
    auto execd = [](pid_t p) {
        std::ifstream in("/proc/" + std::to_string(p) + "/cmdline");
        std::string cmd;
        std::getline(in, cmd, '\0');
        return cmd == "sleep";
    };
    for (int k = 0; k < 500 && !(execd(job) && execd(plain)); ++k)
        ::usleep(10'000);
    auto found = exec::find_leftovers({"eeee5555"});
    REQUIRE(found.size() == 1);
    CHECK(found[0].job == "eeee5555/b/1");
    CHECK(found[0].pid == plain);
    for (pid_t p : {job, plain}) {
        ::kill(-p, SIGKILL);
        ::waitpid(p, nullptr, 0);
    }
}

// Issue 14, item 16: the start-up sweep asks the store about every marked execution, not only the running
// ones; an execution the store does not know is another luaflowd's.
TEST_CASE("leftovers: the caller decides which executions are its own") {
    pid_t mine = start_job("ffff6666/a/1", "exec sleep 30");
    pid_t theirs = start_job("ffff7777/a/1", "exec sleep 30");
    std::vector<std::string> asked;
    std::vector<exec::Leftover> found;
    // Until both have exec'd (before that, /proc shows the parent's environment, without the marker).
    auto asked_theirs = [&] { return std::find(asked.begin(), asked.end(), "ffff7777") != asked.end(); };
    for (int k = 0; k < 200 && (found.empty() || !asked_theirs()); ++k) {
        asked.clear();
        found = exec::find_leftovers([&](const std::string& execution) {
            asked.push_back(execution);
            return execution == "ffff6666";
        });
        if (found.empty() || !asked_theirs()) ::usleep(10'000);
    }
    REQUIRE(found.size() == 1);
    CHECK(found[0].pid == mine);
    CHECK(found[0].job == "ffff6666/a/1");
    CHECK(std::find(asked.begin(), asked.end(), "ffff7777") != asked.end());
    for (pid_t p : {mine, theirs}) {
        ::kill(-p, SIGKILL);
        ::waitpid(p, nullptr, 0);
    }
}
