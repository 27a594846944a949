#include "daemon/exec/leftovers.hpp"

#include "common/log.hpp"

#include <csignal>
#include <dirent.h>
#include <fstream>
#include <memory>
#include <sstream>
#include <unistd.h>

namespace luaflow::exec {

namespace {

std::string read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// The process's state letter and process group from /proc/PID/stat ("pid (comm) S ppid pgrp ...";
// comm may hold spaces and parentheses, so the fields count from the last ')').
bool stat_of(const std::string& proc, pid_t pid, char& state, pid_t& pgid) {
    std::string s = read_all(proc + "/" + std::to_string(pid) + "/stat");
    std::size_t close = s.rfind(')');
    if (close == std::string::npos) return false;
    std::istringstream in(s.substr(close + 1));
    long ppid = 0, pgrp = 0;
    if (!(in >> state >> ppid >> pgrp)) return false;
    pgid = static_cast<pid_t>(pgrp);
    return true;
}

bool gone(pid_t pid) {
    if (::kill(pid, 0) != 0) return true;
    char state = 0;
    pid_t pgid = 0;
    return !stat_of("/proc", pid, state, pgid) || state == 'Z' || state == 'X';
}

// Owned by its timer handle: freed in the handle's close callback.
struct Ending {
    uv_timer_t timer{};
    std::vector<Leftover> left;
    std::function<void()> done;
    std::uint64_t started = 0;
    std::uint64_t kill_after_ms = 0;
    bool killed = false;
};

void check(uv_timer_t* t) {
    auto* e = static_cast<Ending*>(t->data);
    std::erase_if(e->left, [](const Leftover& l) { return gone(l.pid); });
    if (e->left.empty()) {
        uv_timer_stop(t);
        auto done = std::move(e->done);
        uv_close(reinterpret_cast<uv_handle_t*>(t),
                 [](uv_handle_t* h) { delete static_cast<Ending*>(h->data); });
        done();
        return;
    }
    if (!e->killed && uv_now(t->loop) - e->started >= e->kill_after_ms) {
        e->killed = true;
        for (const Leftover& l : e->left) {
            log::warn("leftover process %d of job %s ignored SIGTERM: SIGKILL", static_cast<int>(l.pid),
                      l.job.c_str());
            ::kill(-l.pgid, SIGKILL);
            ::kill(l.pid, SIGKILL);
        }
    }
}

} // namespace

std::vector<Leftover> find_leftovers(const std::set<std::string>& executions, const std::string& proc) {
    std::vector<Leftover> found;
    if (executions.empty()) return found;
    DIR* dir = ::opendir(proc.c_str());
    if (!dir) return found;
    pid_t self = ::getpid();
    while (dirent* d = ::readdir(dir)) {
        char* end = nullptr;
        long pid = std::strtol(d->d_name, &end, 10);
        if (*end || pid <= 0 || pid == self) continue;
        std::string env = read_all(proc + "/" + d->d_name + "/environ");
        std::string job;
        bool slurm = false;
        std::size_t at = 0;
        while (at < env.size()) {
            std::size_t nul = env.find('\0', at);
            if (nul == std::string::npos) nul = env.size();
            std::string_view var(env.data() + at, nul - at);
            at = nul + 1;
            if (var.starts_with("LUAFLOW_JOB=")) job = var.substr(12);
            // A Slurm job that runs on this machine is the cluster's: scancel ends it (recovery.cpp).
            if (var.starts_with("SLURM_JOB_ID=")) slurm = true;
        }
        if (job.empty() || slurm || !executions.count(job.substr(0, job.find('/')))) continue;
        char state = 0;
        pid_t pgid = 0;
        if (!stat_of(proc, static_cast<pid_t>(pid), state, pgid) || state == 'Z') continue;
        found.push_back({static_cast<pid_t>(pid), pgid, job});
    }
    ::closedir(dir);
    return found;
}

void end_leftovers(uv_loop_t* loop, std::vector<Leftover> leftovers, std::uint64_t kill_after_ms,
                   std::function<void()> done) {
    if (leftovers.empty()) return done();
    for (const Leftover& l : leftovers) {
        log::warn("ending process %d (group %d) left running by job %s before a restart",
                  static_cast<int>(l.pid), static_cast<int>(l.pgid), l.job.c_str());
        if (l.pgid > 1) ::kill(-l.pgid, SIGTERM);
        ::kill(l.pid, SIGTERM);
    }
    auto* e = new Ending;
    e->left = std::move(leftovers);
    e->done = std::move(done);
    e->kill_after_ms = kill_after_ms;
    uv_update_time(loop);
    e->started = uv_now(loop);
    uv_timer_init(loop, &e->timer);
    e->timer.data = e;
    uv_timer_start(&e->timer, check, 20, 50);
}

} // namespace luaflow::exec
