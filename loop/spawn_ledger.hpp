#pragma once
// Whether a child may have started processes of its own, told without reading /proc. Linux hands out
// pids in increasing order (cyclically, up to pid_max), and /proc/sys/kernel/ns_last_pid is the last one
// it gave: whatever a child started got a pid between the child's and that one. When every pid in
// between went to a child of ours, the child started nothing, and nothing of it can be left running. A
// /bin/true job then skips the read of every process's environment (child_process.cpp), which cost as
// much CPU as the job's own spawn (bench/subprocess_bench.py).
//
// Only for a child that lived kShortLifeNs at most: pids wrap around after pid_max (32768 by default),
// and nothing hands out that many in that time. The ledger keeps the latest kSpawnsKept spawns, each with
// its time, so that an entry from before a wrap never passes for a later process with the same pid.
#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <sys/types.h>

namespace luaflow::loop {

class SpawnLedger {
  public:
    static constexpr std::uint64_t kShortLifeNs = 100'000'000;
    static constexpr std::size_t kSpawnsKept = 256;

    // A child of ours got `pid` at `at_ns` (uv_hrtime).
    void note(pid_t pid, std::uint64_t at_ns);

    // Whether the child spawned as `pid` at `spawned_ns` may have started processes, with `last_pid` the
    // last pid the kernel gave (nullopt: unknown) and `now_ns` the time: false only when it lived
    // kShortLifeNs at most and each pid after its own, up to `last_pid`, went to a child of ours spawned
    // after it.
    bool may_have_started(pid_t pid, std::uint64_t spawned_ns, std::optional<pid_t> last_pid,
                          std::uint64_t now_ns) const;

  private:
    struct Spawn {
        pid_t pid = 0;
        std::uint64_t at_ns = 0;
    };
    mutable std::mutex mutex_; // the loop threads spawn; tests may run more than one loop
    std::array<Spawn, kSpawnsKept> spawns_{};
    std::size_t next_ = 0;
};

// The one ledger of this process (every ChildProcess notes its spawn here).
SpawnLedger& spawn_ledger();

// /proc/sys/kernel/ns_last_pid: the last pid handed out in this pid namespace, or nullopt when it cannot
// be read. A read of a kernel variable, not of a disk: fine on the loop.
std::optional<pid_t> last_allocated_pid();

} // namespace luaflow::loop
