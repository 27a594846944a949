#pragma once
// Runs `cmd` and `shell` actions as subprocesses (SPEC 3): own process group, LUAFLOW_INPUT and
// LUAFLOW_OUTPUT files, stdout/stderr line by line into the job log, SIGTERM then SIGKILL at the end.
#include "daemon/exec/attempt.hpp"
#include "daemon/loop/child_process.hpp"

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

class ProcessRunner {
  public:
    ProcessRunner(uv_loop_t* loop, LineSink sink, std::map<std::string, std::string> base_env);

    // An attempt that starts argv with the spec's env, cwd and scratch directory.
    std::unique_ptr<Attempt> run(const AttemptSpec& spec, std::vector<std::string> argv, AttemptDone done);

  private:
    uv_loop_t* loop_;
    LineSink sink_;
    std::map<std::string, std::string> base_env_;
};

// The environment a job starts with: the variables of `pass` taken from this process's environment.
std::map<std::string, std::string> passed_environment(const std::vector<std::string>& pass);

inline constexpr std::uint64_t kKillAfterMs = loop::kKillAfterMs; // SIGTERM, then SIGKILL this much later

} // namespace luaflow::exec
