#pragma once
// Processes an earlier run of luaflowd left behind (SPEC 5, luaflowd(8)): after a crash or kill -9, a
// subprocess job of an interrupted attempt may still run, and so may a process that a finished job left
// behind (`setsid sleep 1000 &` outlives its shell). luaflowd does not re-adopt them (their output pipes
// are gone, so their log and exit would be lost): at start, before it carries on, it ends them, and the
// interrupted attempts are retried or fail as interrupted. Jobs are found by the
// LUAFLOW_JOB=EXECUTION/ACTION/ATTEMPT variable every job and its descendants inherit
// (loop/marked_processes.hpp), so a process that left the job's process group is found too.
#include <uv.h>

#include <functional>
#include <set>
#include <string>
#include <sys/types.h>
#include <vector>

namespace luaflow::exec {

struct Leftover {
    pid_t pid = 0;
    pid_t pgid = 0;
    std::string job; // its LUAFLOW_JOB
};

// The processes under `proc` (normally /proc) whose LUAFLOW_JOB names an execution `ours` accepts (its
// id: what comes before the first '/'). A Slurm job's processes that run on this machine are not among
// them: scancel ends those (recovery.cpp).
std::vector<Leftover> find_leftovers(const std::function<bool(const std::string& execution)>& ours,
                                     const std::string& proc = "/proc");
// Those of `executions`.
std::vector<Leftover> find_leftovers(const std::set<std::string>& executions,
                                     const std::string& proc = "/proc");

// SIGTERM to each one's process group and to itself; SIGKILL to those still there `kill_after_ms`
// later; `done` once all are gone (a zombie counts as gone). Runs on `loop` without blocking it.
void end_leftovers(uv_loop_t* loop, std::vector<Leftover> leftovers, std::uint64_t kill_after_ms,
                   std::function<void()> done);

} // namespace luaflow::exec
