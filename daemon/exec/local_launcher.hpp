#pragma once
// Jobs on this machine: the program itself, in its own process group, through loop::ChildProcess.
// A memory limit runs it in a systemd transient scope with MemoryMax= (cgroup v2: the kernel kills it
// when it exceeds the limit) where systemd is there, else under setrlimit(RLIMIT_AS) through prlimit(1)
// (allocations beyond the limit fail; the attempt reads the program's out-of-memory message).
#include "daemon/exec/job.hpp"

#include <uv.h>

namespace luaflow::exec {

enum class MemoryLimitKind { systemd_scope, rlimit };

// The argv that runs `argv` within `memory` bytes.
std::vector<std::string> memory_limited_argv(const std::vector<std::string>& argv, std::uint64_t memory,
                                             MemoryLimitKind kind, const std::string& unit_name, bool user);

class LocalLauncher final : public JobLauncher {
  public:
    explicit LocalLauncher(uv_loop_t* loop) : loop_(loop) {}
    Result<std::unique_ptr<Job>> start(JobSpec spec, JobCallbacks callbacks) override;

  private:
    uv_loop_t* loop_;
    std::uint64_t scopes_ = 0;
};

} // namespace luaflow::exec
