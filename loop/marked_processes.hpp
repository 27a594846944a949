#pragma once
// Processes found by a variable in their environment, and ending them. A subprocess job carries
// LUAFLOW_JOB=EXECUTION/ACTION/ATTEMPT, and every process it starts inherits it, one that left the job's
// process group or session (setsid) too, as Jenkins' ProcessTreeKiller finds a build's processes. This
// finds what of a job still runs after its main process exited (child_process.cpp) and what an earlier
// luaflowd left running (exec/leftovers.cpp).
#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace luaflow::loop {

struct MarkedProcess {
    pid_t pid = 0;
    pid_t pgid = 0;
    std::string value;              // of the marking variable
    std::vector<std::string> among; // the names of `among` (find_marked_processes) its environment holds
};

// The live processes of this user (not zombies, not this one) under `proc` whose environment holds the
// variable `name`, with its value; for each, which of the variables `among` it also holds. Reads
// /proc/*/environ: blocking, for the thread pool (run_in_pool) or the start before the loop runs.
std::vector<MarkedProcess> find_marked_processes(const std::string& name,
                                                 const std::vector<std::string>& among = {},
                                                 const std::string& proc = "/proc");

// The 1 ms waits find_marked_processes has made for empty environments to fill (for tests).
std::uint64_t environ_waits();

// The same off the loop: the live processes whose `name` is `value`, given to `done` on the loop. The
// calls made while a read of /proc runs share the next one, which starts after they were made (so a
// process forked just before a call is seen): a burst of N jobs ending costs two reads, not N (each
// read opens the environment of every process of this user). When the pool refuses the work, `done`
// gets nothing.
void find_marked_processes_async(uv_loop_t* loop, const std::string& name, const std::string& value,
                                 std::function<void(std::vector<MarkedProcess>)> done,
                                 const std::string& proc = "/proc");
// Reads of /proc find_marked_processes_async has made in this process (for tests).
std::uint64_t marked_process_reads();

// SIGTERM to each one's process group (unless it is ours) and to itself; SIGKILL to those still there
// `kill_after_ms` later, after calling `on_kill` with each; `done` once all are gone (a zombie counts as
// gone). Runs on `loop` without blocking it, and owns itself until then.
void end_processes(uv_loop_t* loop, std::vector<MarkedProcess> processes, std::uint64_t kill_after_ms,
                   std::function<void(const MarkedProcess&)> on_kill, std::function<void()> done);

} // namespace luaflow::loop
