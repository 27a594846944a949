#pragma once
// Jobs on a host reached over OpenSSH (SPEC 2 `hosts.*.ssh`): one `ssh -T` connection per job runs a
// POSIX-sh wrapper on the remote side, given the argv, the action's env and cwd on its command line.
//
// The protocol, all of it over that one connection:
// - stdin: "NONCE LEN\n" and the LEN bytes of LUAFLOW_INPUT; then the pipe stays open and silent. Its
//   EOF (we closed it at the timeout, the daemon died, or the connection dropped) makes the wrapper
//   send SIGTERM to the program's process group, and SIGKILL 10 s later.
// - stdout and stderr: the program's own, untouched, streamed as they come. Once the program's process
//   group is empty, the wrapper writes one trailer to stdout: "\x1eluaflow NONCE exit N LEN\n",
//   "... signal N LEN\n" (a status of 128+N, as sh reports it) or "... error MESSAGE\n", then the LEN
//   bytes of LUAFLOW_OUTPUT (LEN -1: the program wrote none). The nonce is random per job, so program
//   output cannot be taken for the trailer.
// The wrapper runs the program with setsid(1) in a fresh `mktemp -d` job directory, which it removes
// at the end. The remote login shell must be a POSIX shell (sh, bash, dash, ksh, zsh).
#include "daemon/exec/job.hpp"

#include <uv.h>

#include <string>
#include <string_view>
#include <vector>

namespace luaflow::exec {

// `s` as one word for a POSIX shell: single-quoted, each ' written as '\''.
std::string shell_quote(std::string_view s);

// The ssh command line that runs `remote_command` on `host`: BatchMode, keep-alives, a connect timeout
// and LogLevel=ERROR unless the host's ssh_options set them, its port, identity and options.
std::vector<std::string> ssh_argv(const config::HostConfig& host, const std::string& remote_command);

// The command line the remote login shell runs for `spec` (see above).
std::string remote_command(const JobSpec& spec);

class SshLauncher final : public JobLauncher {
  public:
    // control_dir: a directory of the daemon's state the launcher may use (unused: one connection per job
    // needs no ControlMaster socket).
    SshLauncher(uv_loop_t* loop, std::string control_dir)
        : loop_(loop), control_dir_(std::move(control_dir)) {}
    Result<std::unique_ptr<Job>> start(JobSpec spec, JobCallbacks callbacks) override;

  private:
    uv_loop_t* loop_;
    std::string control_dir_;
};

} // namespace luaflow::exec
