// Finding marked processes off the loop: each caller gets the processes with its value, and the calls
// made while a read of /proc runs share the next read (a fake /proc here, written by the test).
#include "loop/marked_processes.hpp"
#include "tests/unit/support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>

using namespace luaflow;

namespace {

// DIR/PID/environ and DIR/PID/stat of a sleeping process in group PID, carrying LUAFLOW_JOB=job.
void fake_process(const std::string& dir, int pid, const std::string& job) {
    std::string at = dir + "/" + std::to_string(pid);
    std::filesystem::create_directories(at);
    std::ofstream(at + "/environ") << "HOME=/x" << '\0' << "LUAFLOW_JOB=" << job << '\0';
    std::ofstream(at + "/stat") << pid << " (sleep) S 1 " << pid << " " << pid << " 0";
}

// DIR/PID of a process with an empty environment (an `environ` file unless `readable` is false), in
// state `state`, with the /proc/PID/stat flags `flags`.
void unmarked_process(const std::string& dir, int pid, char state, unsigned long flags,
                      bool readable = true) {
    std::string at = dir + "/" + std::to_string(pid);
    std::filesystem::create_directories(at);
    if (readable) std::ofstream(at + "/environ") << "";
    std::ofstream(at + "/stat") << pid << " (x) " << state << " 1 " << pid << " " << pid << " 0 -1 " << flags
                                << " 0 0";
}

} // namespace

TEST_CASE("marked processes found off the loop: each call gets its own, calls meanwhile share a read") {
    testing::TempDir dir;
    std::string proc = dir.file("proc");
    fake_process(proc, 101, "e1/a/1");
    fake_process(proc, 102, "e2/a/1");
    fake_process(proc, 103, "e1/a/1");
    uv_loop_t loop;
    uv_loop_init(&loop);
    const std::uint64_t reads_before = loop::marked_process_reads();
    std::map<std::string, std::vector<std::vector<pid_t>>> got;
    for (std::string value : {"e1/a/1", "e2/a/1", "e3/a/1", "e1/a/1", "e2/a/1"}) {
        loop::find_marked_processes_async(
            &loop, "LUAFLOW_JOB", value,
            [&got, value](std::vector<loop::MarkedProcess> found) {
                std::vector<pid_t> pids;
                for (const auto& p : found)
                    pids.push_back(p.pid);
                std::sort(pids.begin(), pids.end());
                got[value].push_back(pids);
            },
            proc);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(got["e1/a/1"] == std::vector<std::vector<pid_t>>{{101, 103}, {101, 103}});
    CHECK(got["e2/a/1"] == std::vector<std::vector<pid_t>>{{102}, {102}});
    CHECK(got["e3/a/1"] == std::vector<std::vector<pid_t>>{{}});
    // The first call's read started at once; the four made while it ran shared the next.
    CHECK(loop::marked_process_reads() - reads_before == 2);
    uv_loop_close(&loop);
}

TEST_CASE("marked processes: empty environments are read again together, a few times, never a kernel "
          "thread's") {
    testing::TempDir dir;
    std::string proc = dir.file("proc");
    fake_process(proc, 101, "e1/a/1");
    // Kernel threads, zombies and processes whose environment cannot be opened (not dumpable: EACCES
    // even for root) stay as they are: no wait for them.
    for (int pid = 200; pid < 260; ++pid)
        unmarked_process(proc, pid, 'S', 0x00208040); // PF_KTHREAD
    unmarked_process(proc, 300, 'Z', 0);
    unmarked_process(proc, 301, 'S', 0, false);
    std::uint64_t before = loop::environ_waits();
    auto found = loop::find_marked_processes("LUAFLOW_JOB", {}, proc);
    REQUIRE(found.size() == 1);
    CHECK(found[0].pid == 101);
    CHECK(found[0].value == "e1/a/1");
    CHECK(loop::environ_waits() == before);

    // Live processes of ours with an empty environment may be in an execve: read again, all of them in
    // each of 5 rounds 1 ms apart (5 waits for the 40, not 5 each).
    for (int pid = 400; pid < 440; ++pid)
        unmarked_process(proc, pid, 'S', 0x00400000);
    before = loop::environ_waits();
    found = loop::find_marked_processes("LUAFLOW_JOB", {}, proc);
    CHECK(found.size() == 1);
    CHECK(loop::environ_waits() - before == 5);
}
