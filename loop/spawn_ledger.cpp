#include "loop/spawn_ledger.hpp"

#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <unistd.h>

namespace luaflow::loop {

void SpawnLedger::note(pid_t pid, std::uint64_t at_ns) {
    std::lock_guard lock(mutex_);
    spawns_[next_] = {pid, at_ns};
    next_ = (next_ + 1) % spawns_.size();
}

bool SpawnLedger::may_have_started(pid_t pid, std::uint64_t spawned_ns, std::optional<pid_t> last_pid,
                                   std::uint64_t now_ns) const {
    if (!last_pid || pid <= 0 || now_ns < spawned_ns || now_ns - spawned_ns > kShortLifeNs) return true;
    // Before the child's own pid: the numbers wrapped around. More pids than the ledger holds: some
    // cannot be ours.
    if (*last_pid < pid || static_cast<std::size_t>(*last_pid - pid) > kSpawnsKept) return true;
    std::lock_guard lock(mutex_);
    for (pid_t p = pid + 1; p <= *last_pid; ++p) {
        bool ours = false;
        for (const Spawn& s : spawns_)
            if (s.pid == p && s.at_ns >= spawned_ns) ours = true;
        if (!ours) return true;
    }
    return false;
}

SpawnLedger& spawn_ledger() {
    static SpawnLedger ledger;
    return ledger;
}

std::optional<pid_t> last_allocated_pid() {
    int fd = ::open("/proc/sys/kernel/ns_last_pid", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    char text[32];
    ssize_t n;
    do {
        n = ::read(fd, text, sizeof text - 1);
    } while (n < 0 && errno == EINTR);
    ::close(fd);
    if (n <= 0) return std::nullopt;
    text[n] = '\0';
    char* end = nullptr;
    long pid = std::strtol(text, &end, 10);
    if (end == text || pid <= 0) return std::nullopt;
    return static_cast<pid_t>(pid);
}

} // namespace luaflow::loop
