#pragma once
// What the Slurm launcher says to Slurm and reads back, apart from the loop so that tests can check it
// alone: the batch script, sbatch's command line and environment, and the parsing of squeue, scontrol and
// sacct output into a job's state and exit.
#include "daemon/exec/job.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace luaflow::exec {

namespace slurm {

// Where a job's files are, inside its scratch directory.
struct JobFiles {
    std::string script, stdout_file, stderr_file;
};
JobFiles job_files(const std::string& scratch);

// `s` without the white space around it.
std::string trim(std::string_view s);
// `s` in single quotes for /bin/sh.
std::string shell_quote(std::string_view s);
// The batch script: enters the job's directory and execs its argv.
std::string batch_script(const JobSpec& spec);
// The sbatch command line for the script; an error when a path cannot be given to Slurm.
Result<std::vector<std::string>> sbatch_argv(const JobSpec& spec, const JobFiles& files);
// sbatch's environment: the job's, without CUDA_VISIBLE_DEVICES (Slurm assigns the GPUs), plus the
// daemon's SLURM_* variables (SLURM_CONF) that the job's does not set.
std::map<std::string, std::string> sbatch_env(const JobSpec& spec, char** daemon_environ);
// The job id in `sbatch --parsable` output ("12" or "12;cluster").
std::optional<std::int64_t> parse_job_id(std::string_view sbatch_stdout);

// A state as Slurm names it, with what it said about it.
struct JobState {
    std::string state;  // PENDING, RUNNING, COMPLETED, ...
    std::string reason; // "None" when it gave no reason
    std::int64_t exit_code = 0;
    int exit_signal = 0;
};
// `squeue -h -o %T|%r` output; nullopt when empty (the job has left the queue).
std::optional<JobState> parse_squeue(std::string_view out);
// `scontrol show job ID` output (JobState=, Reason=, ExitCode=N:S); nullopt without a JobState.
std::optional<JobState> parse_scontrol(std::string_view out);
// `sacct -n -P -o State,ExitCode` output (the allocation's line, "CANCELLED by 0|0:15"); nullopt if none.
std::optional<JobState> parse_sacct(std::string_view out);
// A state the job does not leave any more.
bool is_final(std::string_view state);

// What luaflow did to the job, for the meaning of its end.
struct Requested {
    bool timed_out = false; // luaflow scancelled it at its timeout
    std::uint64_t memory = 0;
};
// The exit of a job that ended in `end` (is_final).
JobExit job_exit(std::int64_t job_id, const JobState& end, const Requested& requested);

} // namespace slurm

} // namespace luaflow::exec
