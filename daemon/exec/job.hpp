#pragma once
// A subprocess job: one attempt of a `cmd` or `shell` action, ready to start on its host (SPEC 3).
// The subprocess attempt (process_runner.cpp) prepares it (argv expanded, LUAFLOW_INPUT written,
// resources allocated) and hands it to the launcher of its host's kind: this machine, ssh or Slurm.
// Each launcher reports the exit once; the attempt then reads LUAFLOW_OUTPUT and decides the result.
#include "common/result.hpp"
#include "daemon/config/config.hpp"
#include "loop/child_process.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace luaflow::exec {

// What the job holds of its host while it runs.
struct Allocation {
    double cpus = 0;
    int gpu_count = 0;
    // The devices luaflow picked (gpu_count of them), handed over as CUDA_VISIBLE_DEVICES; empty where
    // the host picks them itself (Slurm: --gres=gpu:N).
    std::vector<std::string> gpus;
    std::uint64_t memory = 0; // bytes; 0: no limit
    // The host has GPUs luaflow hands out (or is still looking for them): a job that holds none gets
    // CUDA_VISIBLE_DEVICES="" and sees no GPU, rather than every device the others hold (SPEC 3).
    bool host_has_gpus = false;
};

struct JobSpec {
    // "EXECUTION/ACTION/ATTEMPT": unique; names the job where a name is needed (Slurm's --job-name, the
    // LUAFLOW_JOB marker in its environment).
    std::string name;
    std::vector<std::string> argv;
    // The whole environment as it is on this machine: the passed variables (env.pass) and own_env.
    std::map<std::string, std::string> env;
    // What luaflow adds: the action's `env`, LUAFLOW_INPUT, LUAFLOW_OUTPUT, LUAFLOW_SCRATCH, LUAFLOW_JOB
    // and, on a host with GPUs, CUDA_VISIBLE_DEVICES (the devices held, or "" for none). A remote host gets
    // only these (it keeps its own PATH and HOME), with the LUAFLOW_* paths replaced by those of the remote
    // copies.
    std::map<std::string, std::string> own_env;
    std::string cwd;         // the action's cwd; empty: the scratch directory (or its remote copy)
    std::string scratch;     // the local scratch directory (exists)
    std::string input_file;  // local, written before start: what LUAFLOW_INPUT names
    std::string output_file; // local: where LUAFLOW_OUTPUT's content must be when the exit is reported
    // From when the job runs: a job queued on a cluster starts its clock when it leaves the queue.
    std::optional<std::uint64_t> timeout_ms;
    Allocation allocation;
    std::string host_name;
    config::HostConfig host;
};

struct JobExit {
    std::int64_t code = 0;  // exit status, when signal is 0
    int signal = 0;         // the signal that ended it, or 0
    bool timed_out = false; // the job's timeout stopped it
    // Set when the job did not run to an exit status of its own: it could not be started, the remote
    // side failed (ssh could not connect, sbatch refused it, the output file could not be copied back).
    // The attempt fails with this message.
    std::string error;
    // Set when the job was killed for exceeding its memory limit: the attempt fails with event
    // `resource` and this message.
    std::string resource;
    // Set by a launcher whose stderr lines (on_line) carry notes of its own (Slurm's "slurm: job 12
    // FAILED"): the program's last non-blank stderr lines (kStderrTailLines of at most kStderrLineKept
    // bytes), which explain a failure instead of what on_line brought.
    std::optional<std::vector<std::string>> stderr_tail;
};

// What is kept of a job's stderr to explain its failure: the last lines that are not blank, and of each
// at most this much (the error quotes a part of the last one, SPEC 5; the job log has them whole).
inline constexpr std::size_t kStderrTailLines = 20;
inline constexpr std::size_t kStderrLineKept = 8192;

// Adds `line` to `tail` as the above says: blank lines say nothing, and only the last lines are kept.
template <class Deque> void keep_stderr_line(Deque& tail, const std::string& line) {
    if (line.find_first_not_of(" \t\r\f\v") == std::string::npos) return;
    tail.push_back(line.substr(0, kStderrLineKept));
    if (tail.size() > kStderrTailLines) tail.pop_front();
}

struct JobCallbacks {
    // Each line of its stdout or stderr, in order per stream, as it comes; a line longer than 64 KiB is
    // cut there and marked (loop/line_splitter.hpp).
    std::function<void(loop::ChildStream, std::string)> on_line;
    // Once. May destroy the Job.
    std::function<void(const JobExit&)> on_exit;
};

// A started job. Destroying it before its exit stops it: SIGTERM to its process group (locally or on
// the remote machine), SIGKILL 10 s later; for Slurm, scancel (the cluster's KillWait sets the delay of
// its SIGKILL). No callback runs any more.
class Job {
  public:
    virtual ~Job() = default;
};

class JobLauncher {
  public:
    virtual ~JobLauncher() = default;
    // Starts the job. An error here (nothing was started) fails the attempt with its message.
    virtual Result<std::unique_ptr<Job>> start(JobSpec spec, JobCallbacks callbacks) = 0;
};

} // namespace luaflow::exec
