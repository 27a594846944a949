#include "daemon/exec/ssh_launcher.hpp"

#include "common/size.hpp"
#include "loop/line_splitter.hpp"
#include "loop/thread_pool.hpp"
#include "loop/uv_handle.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>

namespace luaflow::exec {

namespace {

// Past the SIGKILL the wrapper sends after the timeout, how long it may take to report before the local
// ssh is stopped: a host that stopped answering is otherwise noticed by ServerAlive only after 45 s.
constexpr std::uint64_t kReportGraceMs = 5'000;
// As process_runner.cpp's limit on LUAFLOW_OUTPUT: a larger file fails the attempt anyway.
constexpr std::size_t kMaxOutputCopy = 64u << 20;

// The remote side, after the job's own part (_lf_env, _lf_cwd, _lf_mem, _lf_grace). Its variables start
// with _lf_ so that the action's env cannot clobber them; that env is set only in the subshells that
// look up and run the program, so the wrapper's own tools keep the remote PATH.
// - fd 3 keeps the connection's stdin for the watcher, fd 4 the connection's stderr for the program:
//   the wrapper's own stderr is /dev/null (dash reports a job's signal death there), and its stdout
//   carries only the trailer.
// - SIGHUP and SIGPIPE are ignored so that the wrapper outlives a dropped connection and still stops
//   the group; the program gets them back. It runs in the foreground: an asynchronous list would have
//   SIGINT and SIGQUIT ignored, and dash cannot give them back. It writes its pid (its process group,
//   by setsid) to a file for the watcher and the wrapper.
// - The watcher, its own group, waits for the EOF on stdin, then SIGTERM and SIGKILL to the program's
//   group (or the program's pid, if its setsid has not run yet). When the group is empty the wrapper
//   stops the watcher (by its pid in the same case) and reports; a watcher that outlived the wrapper
//   ends with the job directory.
// - "kill -0 -PGID" also counts zombies, which an init that reaps slowly leaves in the group for a
//   while: ps tells them apart.
// - sh reports a signal death as 128+N, so an exit code of 129-192 reads as that signal (SPEC 3's
//   programs exit 0-127 or die).
// - Once the group is empty, what left it (setsid) but still carries the job's LUAFLOW_JOB is found in
//   /proc, where the host has one and GNU grep (-z), and gets SIGTERM, then SIGKILL after the grace:
//   as on the local host, a detached grandchild does not outlive its job. The wrapper and its watcher
//   do not carry the marker (_lf_env exports it only in the program's subshell); the local ssh does,
//   which on a host that is this machine is in the same /proc, but not this job directory as its
//   LUAFLOW_SCRATCH.
constexpr std::string_view kWrapper = R"sh(
exec 3<&0 4>&2 2>/dev/null
trap '' HUP PIPE
_lf_n=
_lf_d=
_lf_fail() {
    printf '\036luaflow %s error %s\n' "$_lf_n" "$*"
    if [ -n "$_lf_d" ]; then cd / && rm -rf "$_lf_d"; fi
    exit 0
}
IFS=' ' read -r _lf_n _lf_len || exit 0
_lf_tmp=${TMPDIR:-/tmp}
_lf_d=$(mktemp -d "$_lf_tmp/luaflow.XXXXXXXXXX") || _lf_fail "cannot create a job directory in $_lf_tmp"
if [ "$_lf_len" -ge 0 ]; then
    head -c "$_lf_len" >"$_lf_d/input.json"
    [ "$(($(wc -c <"$_lf_d/input.json")))" -eq "$_lf_len" ] || _lf_fail "the input file arrived incomplete"
    export LUAFLOW_INPUT="$_lf_d/input.json"
fi
export LUAFLOW_OUTPUT="$_lf_d/output.json" LUAFLOW_SCRATCH="$_lf_d"
cd "${_lf_cwd:-$_lf_d}" || _lf_fail "cannot change to directory ${_lf_cwd:-$_lf_d}"
command -v setsid >/dev/null || _lf_fail "setsid (util-linux) is not installed"
(_lf_env; command -v "$1") >/dev/null || _lf_fail "cannot start '$1': not found"
if [ -n "$_lf_mem" ]; then
    (ulimit -v "$_lf_mem") || _lf_fail "cannot set ulimit -v $_lf_mem"
fi
_lf_pid=$_lf_d/.pid
setsid /bin/sh -c '
    cat >/dev/null
    while [ ! -s "$1" ]; do [ -d "${1%/*}" ] || exit; sleep 1; done
    read -r p <"$1"
    kill -TERM -"$p" || kill -TERM "$p"
    sleep "$2"
    kill -KILL -"$p"' luaflow-watch "$_lf_pid" "$_lf_grace" <&3 >/dev/null 4>&- &
_lf_w=$!
exec 3<&-
(
    trap - HUP PIPE
    _lf_env
    if [ -n "$_lf_mem" ]; then ulimit -v "$_lf_mem"; fi
    exec /bin/sh -c 'echo $$ >"$0" && exec setsid "$@"' "$_lf_pid" "$@"
) </dev/null 2>&4 4>&-
_lf_s=$?
read -r _lf_p <"$_lf_pid"
_lf_alive() {
    [ -n "$_lf_p" ] && kill -0 -"$_lf_p" || return 1
    command -v ps >/dev/null || return 0
    ps -A -o pgid= -o stat= | awk -v g="$_lf_p" '$1 == g && $2 !~ /^Z/ { f = 1 } END { exit !f }'
}
_lf_i=0
while _lf_alive; do
    if [ "$_lf_i" -lt 20 ]; then sleep 0.1 || sleep 1; else sleep 1; fi
    _lf_i=$((_lf_i + 1))
done
kill -KILL -"$_lf_w" || kill -KILL "$_lf_w"
_lf_marked() {
    [ -n "$_lf_job" ] && [ -r /proc/self/environ ] || return 0
    for _lf_f in $(grep -lszxF "LUAFLOW_JOB=$_lf_job" /proc/[0-9]*/environ); do
        _lf_f=${_lf_f#/proc/}
        grep -qszxF "LUAFLOW_SCRATCH=$_lf_d" "/proc/$_lf_f" && echo "${_lf_f%/environ}"
    done
}
_lf_m=$(_lf_marked)
if [ -n "$_lf_m" ]; then
    kill -TERM $_lf_m
    _lf_i=0
    while [ -n "$_lf_m" ] && [ "$_lf_i" -lt "$((_lf_grace * 10))" ]; do
        sleep 0.1 || sleep 1
        _lf_i=$((_lf_i + 1))
        _lf_m=$(_lf_marked)
    done
    if [ -n "$_lf_m" ]; then kill -KILL $_lf_m; fi
fi
if [ "$_lf_s" -gt 128 ] && [ "$_lf_s" -lt 193 ]; then _lf_k="signal $((_lf_s - 128))"; else _lf_k="exit $_lf_s"; fi
_lf_o=$_lf_d/output.json
if [ -f "$_lf_o" ]; then
    printf '\036luaflow %s %s %s\n' "$_lf_n" "$_lf_k" "$(($(wc -c <"$_lf_o")))"
    cat "$_lf_o"
else
    printf '\036luaflow %s %s -1\n' "$_lf_n" "$_lf_k"
fi
cd / && rm -rf "$_lf_d"
)sh";

bool is_env_name(const std::string& s) {
    if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
    for (char c : s)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
    return true;
}

// "Key=value" or "Key value": the key, lower-cased (ssh's keywords are case-insensitive).
std::string option_key(const std::string& option) {
    std::string key = option.substr(0, option.find_first_of("= \t"));
    for (char& c : key)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return key;
}

std::string where(const config::HostConfig& host) {
    std::string s = "ssh " + host.ssh.target;
    if (host.ssh.port) s += " port " + std::to_string(*host.ssh.port);
    return s;
}

// ssh's last stderr line without what the message already says: "ssh: connect to host ..." and
// "root@host: Permission denied (publickey)." lose their "ssh: " and "root@host: ".
std::string ssh_reason(std::string line, const std::string& target) {
    while (!line.empty() && (line.back() == '.' || std::isspace(static_cast<unsigned char>(line.back()))))
        line.pop_back();
    for (const std::string& prefix : {std::string("ssh: "), target + ": "})
        if (line.rfind(prefix, 0) == 0) line.erase(0, prefix.size());
    return line;
}

// 128 random bits in hex (getrandom(2): it does not block once the system has booted).
std::string random_nonce() {
    std::random_device random;
    static const char* const kHex = "0123456789abcdef";
    std::string s;
    for (int i = 0; i < 4; ++i) {
        std::uint32_t word = random();
        for (int j = 0; j < 8; ++j, word >>= 4)
            s += kHex[word & 15];
    }
    return s;
}

// What the wrapper's trailer said.
struct Trailer {
    enum class State { none, header, body, done };
    State state = State::none;
    std::string header;      // the line after the marker
    std::string error;       // "error MESSAGE"
    std::int64_t code = 0;   // "exit N"
    int signal = 0;          // "signal N"
    std::int64_t length = 0; // of the output file; -1: none
    std::string output;
    std::size_t received = 0; // of the output file's bytes
    bool malformed = false;
};

class SshJob final : public Job {
  public:
    SshJob(uv_loop_t* loop, JobSpec spec, JobCallbacks callbacks, std::vector<std::string> argv)
        : loop_(loop), spec_(std::move(spec)), callbacks_(std::move(callbacks)), argv_(std::move(argv)),
          where_(where(spec_.host)), nonce_(random_nonce()), marker_("\x1eluaflow " + nonce_ + " "),
          timer_(loop) {}

    // The child goes first: abandoned, it stops the local ssh, and the remote group with the connection.
    ~SshJob() override { *alive_ = false; }

    void begin() {
        if (spec_.input_file.empty()) return launch(std::nullopt);
        struct Read {
            std::optional<std::string> content;
            std::string error;
        };
        auto read = std::make_shared<Read>();
        auto queued = loop::run_in_pool(
            loop_,
            [read, file = spec_.input_file] {
                std::ifstream in(file, std::ios::binary);
                if (!in) return void(read->error = "cannot read " + file + ": " + std::strerror(errno));
                std::string text;
                char buf[65536];
                while (in.read(buf, sizeof buf) || in.gcount() > 0)
                    text.append(buf, static_cast<std::size_t>(in.gcount()));
                if (in.bad()) return void(read->error = "cannot read " + file);
                read->content = std::move(text);
            },
            [this, alive = alive_, read] {
                if (!*alive) return;
                if (!read->error.empty()) return settle(failure(read->error), std::nullopt);
                launch(std::move(read->content));
            });
        if (!queued) settle(failure(queued.error().message), std::nullopt);
    }

  private:
    JobExit failure(std::string message) const {
        JobExit x;
        x.error = where_ + ": " + std::move(message);
        return x;
    }

    void launch(std::optional<std::string> input) {
        loop::ChildOptions options;
        options.argv = argv_;
        options.env = spec_.env;
        // What ssh itself may need from the daemon's environment: the agent, and where its files are.
        for (const char* name : {"SSH_AUTH_SOCK", "HOME", "USER", "LOGNAME"})
            if (const char* v = std::getenv(name); v && !options.env.count(name)) options.env[name] = v;
        options.env["LUAFLOW_JOB"] = spec_.name; // the restart reaper finds the local ssh by it
        options.cwd = spec_.scratch;
        std::string header = nonce_ + " " + (input ? std::to_string(input->size()) : "-1") + "\n";
        options.stdin_data = input ? header + *input : header;
        options.keep_stdin_open = true;
        loop::ChildCallbacks cb;
        cb.on_chunk = [this](loop::ChildStream stream, std::string_view chunk) {
            if (stream == loop::ChildStream::out)
                on_stdout(chunk);
            else
                on_stderr(chunk);
        };
        cb.on_exit = [this](const loop::ChildExit& e) { on_ssh_exit(e); };
        auto child = loop::ChildProcess::spawn(loop_, std::move(options), std::move(cb));
        if (!child) return settle(failure("cannot start ssh: " + child.error().message), std::nullopt);
        child_ = std::move(*child);
        if (spec_.timeout_ms) timer_.start(*spec_.timeout_ms, [this] { on_timeout(); });
    }

    // EOF on the remote wrapper's stdin: it stops the group and reports.
    void on_timeout() {
        timed_out_ = true;
        child_->close_stdin();
        timer_.start(loop::kKillAfterMs + kReportGraceMs, [this] { child_->terminate(); });
    }

    // Emits lines to the owner, who may destroy this job in on_line; false once it did.
    bool emit(loop::ChildStream stream, std::string line) {
        std::shared_ptr<bool> alive = alive_;
        if (callbacks_.on_line) callbacks_.on_line(stream, std::move(line));
        return *alive;
    }

    void on_stderr(std::string_view chunk) {
        err_.feed(chunk, [this](std::string line) {
            last_err_ = line;
            return emit(loop::ChildStream::err, std::move(line));
        });
    }

    void on_stdout(std::string_view chunk) {
        if (trailer_.state == Trailer::State::none) {
            pending_.append(chunk);
            std::size_t at = pending_.find(marker_);
            if (at == std::string::npos) {
                // A marker holds no newline: what ends with the last newline cannot hold the start of
                // one, nor can any byte before the last marker.size() - 1. The rest goes to the lines now,
                // so that a long line is cut as it comes, not kept whole (issue 14, item 12).
                std::size_t nl = pending_.rfind('\n');
                std::size_t pass = std::max(nl == std::string::npos ? 0 : nl + 1,
                                            pending_.size() - std::min(pending_.size(), marker_.size() - 1));
                std::string lines = pending_.substr(0, pass);
                pending_.erase(0, pass);
                out_.feed(lines, [this](std::string line) { return emit(loop::ChildStream::out, line); });
                return;
            }
            std::string rest = pending_.substr(at + marker_.size());
            pending_.resize(at);
            std::string program = std::exchange(pending_, {});
            trailer_.state = Trailer::State::header;
            if (!out_.feed(program, [this](std::string line) { return emit(loop::ChildStream::out, line); }))
                return;
            if (auto last = out_.finish(); last && !emit(loop::ChildStream::out, std::move(*last))) return;
            return on_trailer(rest);
        }
        on_trailer(chunk);
    }

    void on_trailer(std::string_view chunk) {
        Trailer& t = trailer_;
        if (t.state == Trailer::State::header) {
            std::size_t nl = chunk.find('\n');
            t.header.append(chunk.substr(0, nl));
            if (nl == std::string_view::npos) return;
            chunk.remove_prefix(nl + 1);
            parse_header();
        }
        if (t.state == Trailer::State::body) {
            std::size_t take = std::min(chunk.size(), static_cast<std::size_t>(t.length) - t.received);
            if (static_cast<std::size_t>(t.length) <= kMaxOutputCopy) t.output.append(chunk.substr(0, take));
            t.received += take;
            chunk.remove_prefix(take);
            if (t.received == static_cast<std::size_t>(t.length)) t.state = Trailer::State::done;
        }
        // After it, what a process that left the group still writes.
        if (t.state == Trailer::State::done && !chunk.empty())
            out_.feed(chunk, [this](std::string line) { return emit(loop::ChildStream::out, line); });
    }

    void parse_header() {
        Trailer& t = trailer_;
        t.state = Trailer::State::done;
        const std::string& h = t.header;
        if (h.rfind("error ", 0) == 0) {
            t.error = h.substr(6);
            return;
        }
        char kind[8] = {};
        long long value = 0, length = 0;
        if (std::sscanf(h.c_str(), "%7s %lld %lld", kind, &value, &length) != 3 ||
            (std::strcmp(kind, "exit") != 0 && std::strcmp(kind, "signal") != 0) || length < -1) {
            t.malformed = true;
            return;
        }
        if (std::strcmp(kind, "exit") == 0)
            t.code = value;
        else
            t.signal = static_cast<int>(value);
        t.length = length;
        if (length > 0) t.state = Trailer::State::body;
    }

    void on_ssh_exit(const loop::ChildExit& e) {
        timer_.stop();
        // What is left of the output, a last line without a newline included.
        if (!out_.feed(std::exchange(pending_, {}),
                       [this](std::string line) { return emit(loop::ChildStream::out, line); }))
            return;
        if (auto last = out_.finish(); last && !emit(loop::ChildStream::out, std::move(*last))) return;
        if (auto last = err_.finish()) {
            last_err_ = *last;
            if (!emit(loop::ChildStream::err, std::move(*last))) return;
        }

        const Trailer& t = trailer_;
        JobExit x;
        std::optional<std::string> output;
        if (timed_out_) {
            // Whatever the remote side managed to say, the timeout is why it ended.
            x.timed_out = true;
            x.code = t.state == Trailer::State::done ? t.code : e.code;
            x.signal = t.state == Trailer::State::done ? t.signal : e.signal;
        } else if (t.state == Trailer::State::done && t.malformed) {
            x = failure("the remote wrapper's report is garbled: " + t.header);
        } else if (t.state == Trailer::State::done && !t.error.empty()) {
            x = failure(t.error);
        } else if (t.state == Trailer::State::done) {
            x.code = t.code;
            x.signal = t.signal;
            if (t.length > static_cast<std::int64_t>(kMaxOutputCopy))
                x = failure("LUAFLOW_OUTPUT is larger than " + format_size(kMaxOutputCopy));
            else if (t.length >= 0)
                output = t.output;
        } else if (t.state != Trailer::State::none) {
            x = failure("the connection ended while the output file was copied back (" +
                        std::to_string(t.received) + " of " + std::to_string(t.length) + " bytes)");
        } else if (e.signal != 0) {
            x = failure(std::string("ssh was killed by signal ") + strsignal(e.signal));
        } else if (e.code == 255) {
            x = failure(last_err_.empty() ? "ssh failed (exit status 255)"
                                          : ssh_reason(last_err_, spec_.host.ssh.target));
        } else {
            x = failure("the remote side ended without a report (exit status " + std::to_string(e.code) +
                        (last_err_.empty() ? ")" : "): " + last_err_));
        }
        settle(std::move(x), std::move(output));
    }

    // The local output file becomes what the remote one was (none: none), then the exit is reported.
    void settle(JobExit exit, std::optional<std::string> output) {
        auto error = std::make_shared<std::string>();
        auto queued = loop::run_in_pool(
            loop_,
            [error, file = spec_.output_file, output = std::move(output)] {
                if (file.empty()) return;
                std::error_code ec;
                if (!output) {
                    std::filesystem::remove(file, ec);
                    if (ec) *error = "cannot remove " + file + ": " + ec.message();
                    return;
                }
                std::ofstream out(file, std::ios::binary | std::ios::trunc);
                out.write(output->data(), static_cast<std::streamsize>(output->size()));
                out.close();
                if (!out) *error = "cannot write " + file + ": " + std::strerror(errno);
            },
            [this, alive = alive_, error, exit = std::move(exit)]() mutable {
                if (!*alive) return;
                if (!error->empty() && exit.error.empty())
                    exit.error = where_ + ": the output file could not be copied back: " + *error;
                report(exit);
            });
        if (!queued) {
            exit.error = where_ + ": " + queued.error().message;
            report(exit);
        }
    }

    void report(const JobExit& exit) {
        auto on_exit = std::move(callbacks_.on_exit);
        callbacks_ = {};
        if (on_exit) on_exit(exit); // may destroy this
    }

    uv_loop_t* loop_;
    JobSpec spec_;
    JobCallbacks callbacks_;
    std::vector<std::string> argv_;
    std::string where_; // "ssh user@host port N", for messages
    std::string nonce_;
    std::string marker_; // "\x1eluaflow NONCE "
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
    loop::Timer timer_;
    loop::LineSplitter out_, err_;
    std::string pending_; // stdout not yet passed on: bytes that may be the start of the marker
    std::string last_err_;
    Trailer trailer_;
    bool timed_out_ = false;
    std::unique_ptr<loop::ChildProcess> child_; // last: destroyed first
};

} // namespace

std::string shell_quote(std::string_view s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'')
            out += "'\\''";
        else
            out += c;
    }
    out += "'";
    return out;
}

std::vector<std::string> ssh_argv(const config::HostConfig& host, const std::string& remote_command) {
    // -T: no terminal, so the program's output is its own and no SIGHUP comes from a pty. -e none: the
    // input file on stdin may hold "~." after a newline.
    std::vector<std::string> argv = {"ssh", "-T", "-e", "none", "-o", "BatchMode=yes"};
    if (host.ssh.port) argv.insert(argv.end(), {"-p", std::to_string(*host.ssh.port)});
    if (!host.ssh.identity.empty()) argv.insert(argv.end(), {"-i", host.ssh.identity});
    std::vector<std::string> set;
    for (const std::string& o : host.ssh.options) {
        argv.insert(argv.end(), {"-o", o});
        set.push_back(option_key(o));
    }
    // ssh takes the first value given for an option: these come after the user's, and only if unset.
    for (const char* o :
         {"ServerAliveInterval=15", "ServerAliveCountMax=3", "ConnectTimeout=10", "LogLevel=ERROR"}) {
        if (std::find(set.begin(), set.end(), option_key(o)) == set.end()) argv.insert(argv.end(), {"-o", o});
    }
    argv.insert(argv.end(), {"--", host.ssh.target, remote_command});
    return argv;
}

std::string remote_command(const JobSpec& spec) {
    std::string script = "_lf_env() {\n";
    for (const auto& [k, v] : spec.own_env) {
        if (k == "LUAFLOW_INPUT" || k == "LUAFLOW_OUTPUT" || k == "LUAFLOW_SCRATCH") continue;
        script += "    export " + k + "=" + shell_quote(v) + "\n";
    }
    script += "    :\n}\n";
    script += "_lf_cwd=" + shell_quote(spec.cwd) + "\n";
    // ulimit -v counts KiB.
    std::uint64_t memory = spec.allocation.memory;
    script += "_lf_mem=" + (memory > 0 ? std::to_string((memory + 1023) / 1024) : std::string()) + "\n";
    script += "_lf_grace=" + std::to_string((loop::kKillAfterMs + 999) / 1000) + "\n";
    auto job = spec.own_env.find("LUAFLOW_JOB");
    script += "_lf_job=" + shell_quote(job == spec.own_env.end() ? std::string() : job->second) + "\n";
    script += kWrapper;
    std::string command = "exec /bin/sh -c " + shell_quote(script) + " luaflow";
    for (const std::string& a : spec.argv)
        command += " " + shell_quote(a);
    return command;
}

Result<std::unique_ptr<Job>> SshLauncher::start(JobSpec spec, JobCallbacks callbacks) {
    if (spec.argv.empty()) return make_error(ErrorCode::invalid, "no program given");
    if (spec.host.ssh.target.empty())
        return make_error(ErrorCode::invalid, "host " + spec.host_name + ": no ssh target");
    for (const auto& [k, v] : spec.own_env)
        if (!is_env_name(k))
            return make_error(ErrorCode::invalid, "env: '" + k + "' cannot be set on host " + spec.host_name +
                                                      " (a remote variable name is [A-Za-z_][A-Za-z0-9_]*)");
    std::vector<std::string> argv = ssh_argv(spec.host, remote_command(spec));
    auto job = std::make_unique<SshJob>(loop_, std::move(spec), std::move(callbacks), std::move(argv));
    job->begin();
    return std::unique_ptr<Job>(std::move(job));
}

} // namespace luaflow::exec
