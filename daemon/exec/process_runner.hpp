#pragma once
// Runs `cmd` and `shell` actions as subprocess jobs (SPEC 3): fills the argv's {{ expr }} templates,
// writes LUAFLOW_INPUT on the thread pool, starts the job through its host's launcher (this machine,
// ssh, Slurm), passes each output line to the job log as it comes, and reads LUAFLOW_OUTPUT at the end.
#include "daemon/exec/attempt.hpp"
#include "daemon/exec/job.hpp"
#include "daemon/exec/lua_runner.hpp"

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace luaflow::exec {

// Receives each output line of a job as it comes.
using LineSink = std::function<void(const std::string& execution, const std::string& action, int attempt,
                                    const char* stream, std::string line)>;

// Where and how one attempt runs, as the executor decided it.
struct SubprocessPlan {
    std::vector<std::string> argv;               // the cmd as written (templates filled later), or /bin/sh -c
    bool expand = false;                         // the cmd has {{ expr }} templates (ActionCode::argv_fn)
    std::map<std::string, std::string> base_env; // the passed environment (env.pass)
    Allocation allocation;
    std::string host_name;
    config::HostConfig host;
    JobLauncher* launcher = nullptr;
};

// Masks the secrets in a text (Secrets::redact): applied to a stderr line before the error quotes it,
// so that the cut at kErrorLineBytes cannot leave the start of a secret showing.
using Redact = std::function<std::string(std::string)>;

class ProcessRunner {
  public:
    ProcessRunner(uv_loop_t* loop, LineSink sink, LuaRunner& lua, Redact redact)
        : loop_(loop), sink_(std::move(sink)), lua_(lua), redact_(std::move(redact)) {}

    std::unique_ptr<Attempt> run(AttemptSpec spec, SubprocessPlan plan, AttemptDone done);

  private:
    uv_loop_t* loop_;
    LineSink sink_;
    LuaRunner& lua_;
    Redact redact_;
};

// The environment a job starts with: the variables of `pass` taken from this process's environment.
std::map<std::string, std::string> passed_environment(const std::vector<std::string>& pass);

// The out-of-memory message among a failed job's last stderr lines, if there is one: what a program
// prints when an allocation fails under RLIMIT_AS (Python's MemoryError, C++'s bad_alloc, glibc's
// "Cannot allocate memory", Rust's and Go's allocation failures).
std::optional<std::string> out_of_memory_line(const std::vector<std::string>& stderr_tail);

// A failed job's error quotes at most this much of its last stderr line (SPEC 5), cut at a character
// boundary and ended with "…"; a longer line is in the job log.
inline constexpr std::size_t kErrorLineBytes = 500;

// "exit code 1" or "killed by signal Killed", then ": " and the last line that is not blank among
// `stderr_tail`, redacted and cut to kErrorLineBytes: "exit code 1: ValueError: bad row 12".
std::string failure_message(std::int64_t code, int signal, const std::vector<std::string>& stderr_tail,
                            const Redact& redact);

// `line` cut to at most `max` bytes at a UTF-8 character boundary, with "…" when something was cut.
std::string shorten_line(std::string line, std::size_t max);

inline constexpr std::uint64_t kKillAfterMs = loop::kKillAfterMs; // SIGTERM, then SIGKILL this much later

} // namespace luaflow::exec
