#pragma once
// Runs subprocess jobs on a Slurm cluster (SPEC 2 `hosts`, `slurm = { partition, account, options }`).
// A job is a batch script in the scratch directory (a filesystem the compute nodes share), submitted with
// sbatch and followed with squeue, then scontrol (or sacct) once it has left the queue; its stdout and
// stderr files are tailed into the job log. Every Slurm command is a loop::ChildProcess: nothing blocks
// the loop. Destroying the Job scancels it.
#include "daemon/exec/job.hpp"
#include "daemon/exec/slurm_protocol.hpp"

#include <uv.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace luaflow::exec {

namespace slurm {
class Detached;
}

class SlurmLauncher final : public JobLauncher {
  public:
    explicit SlurmLauncher(uv_loop_t* loop);
    // A scancel still running goes on to its end.
    ~SlurmLauncher() override;
    SlurmLauncher(const SlurmLauncher&) = delete;
    SlurmLauncher& operator=(const SlurmLauncher&) = delete;

    // Writes the batch script on the thread pool, then submits it; every failure after this returns
    // comes as JobExit::error.
    Result<std::unique_ptr<Job>> start(JobSpec spec, JobCallbacks callbacks) override;
    // `scancel --name=luaflow:NAME`, fire-and-forget: for a job a previous daemon may have submitted.
    void cancel_by_name(const std::string& job_name);

  private:
    uv_loop_t* loop_;
    std::shared_ptr<slurm::Detached> detached_;
};

} // namespace luaflow::exec
