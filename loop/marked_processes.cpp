#include "loop/marked_processes.hpp"

#include "loop/thread_pool.hpp"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <dirent.h>
#include <fcntl.h>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <sys/stat.h>
#include <thread>
#include <tuple>
#include <unistd.h>

namespace luaflow::loop {

namespace {

// A /proc file, read whole with a close-on-exec descriptor (a job started meanwhile must not inherit
// it); `uid` is its owner, the process's. Nothing when it cannot be opened (gone, not ours, or not
// readable: the environment of a process that is not dumpable).
std::optional<std::string> read_proc_file(const std::string& path, uid_t* uid = nullptr) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    struct stat st {};
    if (uid && (::fstat(fd, &st) != 0 || st.st_uid != *uid)) {
        ::close(fd);
        return std::nullopt;
    }
    std::string text;
    char buf[16384];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        text.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return text;
}

struct ProcStat {
    char state = 0;
    pid_t pgid = 0;
    unsigned long flags = 0;
};

// The state letter, process group and flags from /proc/PID/stat ("pid (comm) S ppid pgrp session tty
// tpgid flags ..."; comm may hold spaces and parentheses, so the fields count from the last ')').
std::optional<ProcStat> stat_of(const std::string& proc, pid_t pid) {
    std::string s = read_proc_file(proc + "/" + std::to_string(pid) + "/stat").value_or("");
    std::size_t close = s.rfind(')');
    if (close == std::string::npos || close + 2 >= s.size()) return std::nullopt;
    const char* at = s.c_str() + close + 2;
    ProcStat st;
    st.state = *at;
    char* end = nullptr;
    std::strtol(at + 1, &end, 10); // ppid
    st.pgid = static_cast<pid_t>(std::strtol(end, &end, 10));
    for (int skip = 0; skip < 3; ++skip) // session, tty_nr, tpgid
        std::strtol(end, &end, 10);
    st.flags = std::strtoul(end, &end, 10);
    return st;
}

std::atomic<std::uint64_t> g_environ_waits{0};

bool live(const ProcStat& st) {
    return st.state != 'Z' && st.state != 'X';
}

// A kernel thread's environment is empty for good (PF_KTHREAD in include/linux/sched.h).
constexpr unsigned long kKernelThread = 0x00200000;

// Whether PROC/PID is a live process of `uid` (not a zombie, not a kernel thread) whose empty
// environment may yet fill: one in the middle of an execve.
bool may_be_exec_ing(const std::string& proc, pid_t pid, uid_t uid) {
    struct stat st {};
    if (::stat((proc + "/" + std::to_string(pid)).c_str(), &st) != 0 || st.st_uid != uid) return false;
    auto ps = stat_of(proc, pid);
    return ps && live(*ps) && !(ps->flags & kKernelThread);
}

bool gone(pid_t pid) {
    if (::kill(pid, 0) != 0) return true;
    auto ps = stat_of("/proc", pid);
    return !ps || !live(*ps);
}

// Owned by its timer handle: freed in the handle's close callback.
struct Ending {
    uv_timer_t timer{};
    std::vector<MarkedProcess> left;
    std::function<void(const MarkedProcess&)> on_kill;
    std::function<void()> done;
    std::uint64_t started = 0;
    std::uint64_t kill_after_ms = 0;
    bool killed = false;
};

void signal_process(const MarkedProcess& p, int sig) {
    // Never our own group: a marked process cannot be in it (jobs start in a session of their own), but
    // a stale pgid read from /proc must not make us signal ourselves.
    if (p.pgid > 1 && p.pgid != ::getpgrp()) ::kill(-p.pgid, sig);
    ::kill(p.pid, sig);
}

void check(uv_timer_t* t) {
    auto* e = static_cast<Ending*>(t->data);
    std::erase_if(e->left, [](const MarkedProcess& p) { return gone(p.pid); });
    if (e->left.empty()) {
        uv_timer_stop(t);
        auto done = std::move(e->done);
        uv_close(reinterpret_cast<uv_handle_t*>(t),
                 [](uv_handle_t* h) { delete static_cast<Ending*>(h->data); });
        if (done) done();
        return;
    }
    if (!e->killed && uv_now(t->loop) - e->started >= e->kill_after_ms) {
        e->killed = true;
        for (const MarkedProcess& p : e->left) {
            if (e->on_kill) e->on_kill(p);
            signal_process(p, SIGKILL);
        }
    }
}

} // namespace

std::vector<MarkedProcess> find_marked_processes(const std::string& name,
                                                 const std::vector<std::string>& among,
                                                 const std::string& proc) {
    std::vector<MarkedProcess> found;
    DIR* dir = ::opendir(proc.c_str()); // glibc opens it close-on-exec
    if (!dir) return found;
    pid_t self = ::getpid();
    uid_t uid = ::geteuid();
    std::string prefix = name + "=";
    auto consider = [&](pid_t pid, const std::string& env) {
        MarkedProcess p;
        bool marked = false;
        std::size_t at = 0;
        while (at < env.size()) {
            std::size_t nul = env.find('\0', at);
            if (nul == std::string::npos) nul = env.size();
            std::string_view var(env.data() + at, nul - at);
            at = nul + 1;
            if (var.starts_with(prefix)) {
                marked = true;
                p.value = var.substr(prefix.size());
            }
            for (const std::string& other : among)
                if (var.size() > other.size() && var.starts_with(other) && var[other.size()] == '=')
                    p.among.push_back(other);
        }
        if (!marked) return;
        auto ps = stat_of(proc, pid);
        if (!ps || !live(*ps)) return;
        p.pid = pid;
        p.pgid = ps->pgid;
        found.push_back(std::move(p));
    };
    // A process in the middle of an execve shows an empty environment until the new image's is set up:
    // a job's child exec'ing just as the job ends (`setsid sleep 30 &`, its setsid already done) was
    // missed, and outlived the job (the torture test caught it once). Those are read again after the
    // pass, a few times 1 ms apart, all together: a scan waits 5 ms at most, however many there are.
    std::vector<pid_t> empty;
    while (dirent* d = ::readdir(dir)) {
        char* end = nullptr;
        long pid = std::strtol(d->d_name, &end, 10);
        if (*end || pid <= 0 || pid == self) continue;
        auto env = read_proc_file(proc + "/" + d->d_name + "/environ", &uid);
        if (!env) continue; // gone, not ours, or not readable
        if (env->empty()) {
            if (may_be_exec_ing(proc, static_cast<pid_t>(pid), uid)) empty.push_back(static_cast<pid_t>(pid));
            continue;
        }
        consider(static_cast<pid_t>(pid), *env);
    }
    ::closedir(dir);
    for (int tries = 0; tries < 5 && !empty.empty(); ++tries) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        ++g_environ_waits;
        std::erase_if(empty, [&](pid_t pid) {
            auto env = read_proc_file(proc + "/" + std::to_string(pid) + "/environ", &uid);
            if (!env) return true;
            if (env->empty()) return !may_be_exec_ing(proc, pid, uid);
            consider(pid, *env);
            return true;
        });
    }
    return found;
}

std::uint64_t environ_waits() {
    return g_environ_waits;
}

namespace {

// The calls of find_marked_processes_async for one (loop, name, proc): those a running read serves, and
// those waiting for the next.
struct MarkedReads {
    struct Call {
        std::string value;
        std::function<void(std::vector<MarkedProcess>)> done;
    };
    bool reading = false;
    std::vector<Call> waiting;
};
using ReadsKey = std::tuple<uv_loop_t*, std::string, std::string>;
// Only the loop threads touch it (each its own loop's entries); an entry goes once nothing waits.
std::map<ReadsKey, std::shared_ptr<MarkedReads>> g_reads;
std::mutex g_reads_mutex;
std::atomic<std::uint64_t> g_read_count{0};

void start_read(const ReadsKey& key, const std::shared_ptr<MarkedReads>& reads) {
    auto calls = std::make_shared<std::vector<MarkedReads::Call>>();
    calls->swap(reads->waiting);
    reads->reading = true;
    auto found = std::make_shared<std::vector<MarkedProcess>>();
    auto finish = [key, reads, calls, found] {
        for (auto& call : *calls) {
            std::vector<MarkedProcess> mine;
            for (const MarkedProcess& p : *found)
                if (p.value == call.value) mine.push_back(p);
            call.done(std::move(mine));
        }
        reads->reading = false;
        if (!reads->waiting.empty()) return start_read(key, reads);
        std::lock_guard lock(g_reads_mutex);
        g_reads.erase(key);
    };
    auto queued = run_in_pool(
        std::get<0>(key),
        [name = std::get<1>(key), proc = std::get<2>(key), found] {
            ++g_read_count;
            *found = find_marked_processes(name, {}, proc);
        },
        finish);
    if (!queued) finish();
}

} // namespace

void find_marked_processes_async(uv_loop_t* loop, const std::string& name, const std::string& value,
                                 std::function<void(std::vector<MarkedProcess>)> done,
                                 const std::string& proc) {
    ReadsKey key{loop, name, proc};
    std::shared_ptr<MarkedReads> reads;
    {
        std::lock_guard lock(g_reads_mutex);
        auto& slot = g_reads[key];
        if (!slot) slot = std::make_shared<MarkedReads>();
        reads = slot;
    }
    reads->waiting.push_back({value, std::move(done)});
    if (!reads->reading) start_read(key, reads);
}

std::uint64_t marked_process_reads() {
    return g_read_count;
}

void end_processes(uv_loop_t* loop, std::vector<MarkedProcess> processes, std::uint64_t kill_after_ms,
                   std::function<void(const MarkedProcess&)> on_kill, std::function<void()> done) {
    if (processes.empty()) {
        if (done) done();
        return;
    }
    for (const MarkedProcess& p : processes)
        signal_process(p, SIGTERM);
    auto* e = new Ending;
    e->left = std::move(processes);
    e->on_kill = std::move(on_kill);
    e->done = std::move(done);
    e->kill_after_ms = kill_after_ms;
    uv_update_time(loop);
    e->started = uv_now(loop);
    uv_timer_init(loop, &e->timer);
    e->timer.data = e;
    uv_timer_start(&e->timer, check, 20, 50);
}

} // namespace luaflow::loop
