#pragma once
// Processes an earlier run of luaflowd left behind (SPEC 5, luaflowd(8)): after a crash or kill -9, a
// subprocess job of an interrupted attempt may still run. luaflowd does not re-adopt it (its output pipes
// are gone, so its log and exit would be lost): at start, before it carries on, it ends them, and the
// attempt is retried or fails as interrupted. Jobs are found by the LUAFLOW_JOB=EXECUTION/ACTION/ATTEMPT
// variable every job and its descendants inherit (as Jenkins' ProcessTreeKiller finds a build's
// processes), so a process that left the job's process group is found too.
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

// The processes under `proc` (normally /proc) whose LUAFLOW_JOB names one of `executions`.
std::vector<Leftover> find_leftovers(const std::set<std::string>& executions,
                                     const std::string& proc = "/proc");

// SIGTERM to each one's process group and to itself; SIGKILL to those still there `kill_after_ms`
// later; `done` once all are gone (a zombie counts as gone). Runs on `loop` without blocking it.
void end_leftovers(uv_loop_t* loop, std::vector<Leftover> leftovers, std::uint64_t kill_after_ms,
                   std::function<void()> done);

} // namespace luaflow::exec
