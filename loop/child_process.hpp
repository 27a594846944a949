#pragma once
// A child process on the loop (STYLE 2.10), shared by `cmd`/`shell` actions and exec(): argv with its
// whole environment and a working directory, in a new process group; stdin fed from memory while the
// output is read; stdout and stderr as chunks, as lines (LineSplitter: cut at 64 KiB), or both; an
// optional timeout; terminate() sends SIGTERM to the group, then SIGKILL. The exit callback comes once,
// after the exit and both pipes' EOF.
//
// The child inherits no descriptor of the daemon's but its stdin, stdout and stderr: every other one is
// closed in the child before the exec, whether or not whoever opened it asked for close-on-exec (a job
// that outlives the daemon must not hold its state directory's lock; issue 14, item 17).
//
// Dropping the ChildProcess abandons the child: no callback runs any more, the group is terminated, and
// the state lives on until libuv has closed every handle (Neovim proc.c; uvw's self-owning resources).
//
// A child that exits without reading its stdin makes the write fail with EPIPE: the process must ignore
// SIGPIPE (luaflowd does), or that write kills it.
#include "common/result.hpp"
#include "loop/line_splitter.hpp"

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace luaflow::loop {

inline constexpr std::uint64_t kKillAfterMs = 10'000; // SIGTERM, then SIGKILL this much later (SPEC 3)

enum class ChildStream { out, err };
// "stdout" or "stderr".
const char* to_string(ChildStream stream);

struct ChildOptions {
    // argv[0] without a slash is looked up in the PATH of `env` (execvp), or /bin:/usr/bin without one.
    std::vector<std::string> argv;
    std::map<std::string, std::string> env; // the child's whole environment
    std::string cwd;                        // empty: the daemon's
    std::optional<std::string> stdin_data;  // written, then the pipe is closed; none: /dev/null
    // stdin is a pipe that stays open after stdin_data (if any) until close_stdin(), terminate() or the
    // exit: its EOF tells the child that we are gone (ssh carries it to the remote side).
    bool keep_stdin_open = false;
    std::optional<std::uint64_t> timeout_ms;
    std::uint64_t kill_after_ms = kKillAfterMs;
    // The name of a variable of `env` that the child's processes inherit (LUAFLOW_JOB). When the child
    // exits, the rest of its process group gets SIGTERM, and so does every process still marked with the
    // same value (found off the loop, in /proc: one that left the group or session too; not looked for
    // when the child lived briefly and started nothing, spawn_ledger.hpp); those still
    // there kill_after_ms later get SIGKILL. Once they are gone, what still holds the pipes gets a
    // second, then the pipes are closed, and the exit is the child's own even if the timeout
    // came meanwhile: a detached grandchild no longer keeps the result until the timeout (issue 14, item
    // 16). Empty: what outlives the child may write on until it closes the pipes.
    std::string marker;
};

struct ChildExit {
    std::int64_t code = 0;  // the exit status, when `signal` is 0
    int signal = 0;         // the signal that ended it, or 0
    bool timed_out = false; // the timeout terminated it
};

struct ChildCallbacks {
    // Bytes as they come.
    std::function<void(ChildStream, std::string_view)> on_chunk;
    // Each line without its "\n" (or "\r\n"), cut at kMaxLineBytes (line_splitter.hpp); a last line
    // without a newline comes at EOF.
    std::function<void(ChildStream, std::string)> on_line;
    // Once, when the child has exited and both pipes are at EOF. May destroy the ChildProcess.
    std::function<void(const ChildExit&)> on_exit;
};

class ChildProcess {
    class Core;

  public:
    // Starts the child. On failure (no such program, a bad cwd) returns libuv's reason and calls nothing.
    static Result<std::unique_ptr<ChildProcess>> spawn(uv_loop_t* loop, ChildOptions options,
                                                       ChildCallbacks callbacks);
    explicit ChildProcess(std::shared_ptr<Core> core);
    // Abandons the child (see above).
    ~ChildProcess();
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    // SIGTERM to the process group, SIGKILL kill_after_ms later; the exit callback still comes.
    void terminate();
    // Closes stdin (keep_stdin_open); a write still pending is dropped.
    void close_stdin();
    int pid() const;

  private:
    std::shared_ptr<Core> core_;
};

} // namespace luaflow::loop
