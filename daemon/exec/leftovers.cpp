#include "daemon/exec/leftovers.hpp"

#include "common/log.hpp"
#include "loop/marked_processes.hpp"

namespace luaflow::exec {

std::vector<Leftover> find_leftovers(const std::function<bool(const std::string& execution)>& ours,
                                     const std::string& proc) {
    std::vector<Leftover> found;
    // A Slurm job that runs on this machine is the cluster's: scancel ends it (recovery.cpp).
    for (loop::MarkedProcess& p : loop::find_marked_processes("LUAFLOW_JOB", {"SLURM_JOB_ID"}, proc)) {
        if (!p.among.empty() || p.value.empty() || !ours(p.value.substr(0, p.value.find('/')))) continue;
        found.push_back({p.pid, p.pgid, std::move(p.value)});
    }
    return found;
}

std::vector<Leftover> find_leftovers(const std::set<std::string>& executions, const std::string& proc) {
    if (executions.empty()) return {};
    return find_leftovers([&](const std::string& execution) { return executions.count(execution) > 0; },
                          proc);
}

void end_leftovers(uv_loop_t* loop, std::vector<Leftover> leftovers, std::uint64_t kill_after_ms,
                   std::function<void()> done) {
    std::vector<loop::MarkedProcess> processes;
    for (Leftover& l : leftovers) {
        log::warn("ending process %d (group %d) left running by job %s before a restart",
                  static_cast<int>(l.pid), static_cast<int>(l.pgid), l.job.c_str());
        processes.push_back({l.pid, l.pgid, std::move(l.job), {}});
    }
    loop::end_processes(
        loop, std::move(processes), kill_after_ms,
        [](const loop::MarkedProcess& p) {
            log::warn("leftover process %d of job %s ignored SIGTERM: SIGKILL", static_cast<int>(p.pid),
                      p.value.c_str());
        },
        std::move(done));
}

} // namespace luaflow::exec
