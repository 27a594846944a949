#include "loop/child_process.hpp"

#include "loop/marked_processes.hpp"
#include "loop/spawn_ledger.hpp"
#include "loop/thread_pool.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <unordered_map>

namespace luaflow::loop {

namespace {

constexpr std::size_t kReadBuffer = 64 * 1024;
// After the SIGKILL, how long the pipes may stay open once the child itself has exited. Whatever still
// holds them left the process group (setsid); waiting for it would keep the result forever.
constexpr std::uint64_t kDrainAfterKillMs = 1000;

} // namespace

// posix_spawn starts a child without copying the daemon's address space (glibc: clone(CLONE_VM |
// CLONE_VFORK)); uv_spawn forks it, which costs a luaflowd-sized process about 0.5 ms per child and blocks
// the loop until the child has exec'd (bench/subprocess_bench.py). Its exit is watched through a pidfd,
// which libuv does not know: libuv reaps only the children it spawned itself. Kernels without
// pidfd_open (before 5.3) get uv_spawn.
bool have_pidfd() {
    static const bool have = [] {
        int fd = static_cast<int>(::syscall(SYS_pidfd_open, ::getpid(), 0));
        if (fd < 0) return false;
        ::close(fd);
        return true;
    }();
    return have;
}

// What execvp would run for `name` with `path` as PATH, or the errno it would fail with. An empty result
// with 0: a case we leave to uv_spawn (a relative PATH entry, resolved in the child's cwd).
std::pair<std::string, int> find_in_path(const std::string& name, const std::string& path) {
    // The loop asks for the same few programs again and again; a hit costs one access(2).
    static std::unordered_map<std::string, std::string> cache;
    std::string key = path + '\0' + name;
    if (auto it = cache.find(key); it != cache.end() && ::access(it->second.c_str(), X_OK) == 0)
        return {it->second, 0};
    int error = ENOENT;
    std::size_t at = 0;
    while (at <= path.size()) {
        std::size_t colon = path.find(':', at);
        if (colon == std::string::npos) colon = path.size();
        std::string dir = path.substr(at, colon - at);
        at = colon + 1;
        if (dir.empty() || dir[0] != '/') return {"", 0};
        std::string candidate = dir + "/" + name;
        struct stat st {};
        if (::stat(candidate.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (::access(candidate.c_str(), X_OK) != 0) {
            error = EACCES;
            continue;
        }
        if (cache.size() > 256) cache.clear();
        cache[key] = candidate;
        return {candidate, 0};
    }
    return {"", error};
}

const char* to_string(ChildStream stream) {
    return stream == ChildStream::out ? "stdout" : "stderr";
}

// The child's state. It owns itself (self_) from the spawn until libuv has closed its last handle, so it
// outlives an owner that is gone; every handle's data points here.
class ChildProcess::Core : public std::enable_shared_from_this<Core> {
  public:
    Core(uv_loop_t* loop, ChildOptions options, ChildCallbacks callbacks)
        : loop_(loop), options_(std::move(options)), callbacks_(std::move(callbacks)) {
        out_.stream = ChildStream::out;
        err_.stream = ChildStream::err;
    }
    // Every handle is closed by now: the poll handle no longer watches the pidfd.
    ~Core() {
        if (pidfd_ >= 0) ::close(pidfd_);
    }

    Result<void> spawn() {
        if (options_.argv.empty()) return make_error(ErrorCode::invalid, "no program given");
        std::vector<char*> args;
        for (std::string& a : options_.argv)
            args.push_back(a.data());
        args.push_back(nullptr);
        std::vector<std::string> env_strings;
        for (const auto& [k, v] : options_.env)
            env_strings.push_back(k + "=" + v);
        std::vector<char*> envp;
        for (std::string& e : env_strings)
            envp.push_back(e.data());
        envp.push_back(nullptr);

        self_ = shared_from_this();
        if (have_pidfd()) {
            if (auto started = spawn_without_fork(args, envp); !started || pid_ > 0) return started;
        }
        init_pipe(out_);
        init_pipe(err_);
        uv_stdio_container_t stdio[3];
        if (options_.stdin_data || options_.keep_stdin_open) {
            init_pipe(in_);
            // Readable from the child's side.
            stdio[0].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_READABLE_PIPE);
            stdio[0].data.stream = stream_of(in_);
        } else {
            stdio[0].flags = UV_IGNORE;
        }
        stdio[1].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
        stdio[1].data.stream = stream_of(out_);
        stdio[2].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
        stdio[2].data.stream = stream_of(err_);
        uv_timer_init(loop_, &timer_);
        timer_.data = this;
        ++open_;

        uv_process_options_t opts{};
        opts.file = args[0];
        opts.args = args.data();
        opts.env = envp.data();
        opts.cwd = options_.cwd.empty() ? nullptr : options_.cwd.c_str();
        // A new process group (the child leads it), so that terminate() reaches grandchildren too.
        opts.flags = UV_PROCESS_DETACHED;
        opts.stdio_count = 3;
        opts.stdio = stdio;
        opts.exit_cb = [](uv_process_t* p, int64_t status, int signal) {
            static_cast<Core*>(p->data)->on_exit(status, signal);
        };
        process_.data = this;
        spawned_ns_ = uv_hrtime();
        int rc = uv_spawn(loop_, &process_, &opts);
        ++open_;
        if (rc != 0) {
            // libuv: the process handle must be closed even when uv_spawn fails.
            abandoned_ = true;
            finished_ = true;
            callbacks_ = {};
            close(reinterpret_cast<uv_handle_t*>(&process_));
            close(reinterpret_cast<uv_handle_t*>(&timer_));
            close_pipe(out_);
            close_pipe(err_);
            close_pipe(in_);
            return make_error(ErrorCode::unavailable, uv_strerror(rc));
        }
        pid_ = process_.pid;
        spawn_ledger().note(pid_, spawned_ns_);
        start_reading(out_);
        start_reading(err_);
        if (options_.stdin_data) start_writing();
        if (options_.timeout_ms) arm(Stage::timeout, *options_.timeout_ms);
        return {};
    }

    // Starts the child with posix_spawn. Leaves pid_ at 0 without an error when uv_spawn should do it.
    Result<void> spawn_without_fork(std::vector<char*>& args, std::vector<char*>& envp) {
        std::string program = options_.argv[0];
        if (program.find('/') == std::string::npos) {
            auto env_path = options_.env.find("PATH");
            auto [found, error] =
                find_in_path(program, env_path == options_.env.end() ? "/bin:/usr/bin" : env_path->second);
            if (found.empty() && error == 0) return {};
            if (found.empty()) {
                self_.reset();
                return make_error(ErrorCode::unavailable, uv_strerror(-error));
            }
            program = std::move(found);
        }
        // Each pair: the daemon's end non-blocking for the loop, the child's end blocking, both
        // close-on-exec (dup2 onto 0, 1, 2 clears it on the child's copies).
        int out[2] = {-1, -1}, err[2] = {-1, -1}, in[2] = {-1, -1};
        bool with_stdin = options_.stdin_data || options_.keep_stdin_open;
        auto close_fds = [&] {
            for (int* p : {out, err, in})
                for (int k = 0; k < 2; ++k)
                    if (p[k] >= 0) ::close(p[k]);
        };
        if (uv_pipe(out, UV_NONBLOCK_PIPE, 0) != 0 || uv_pipe(err, UV_NONBLOCK_PIPE, 0) != 0 ||
            (with_stdin && uv_pipe(in, 0, UV_NONBLOCK_PIPE) != 0)) {
            int e = errno;
            close_fds();
            self_.reset();
            return make_error(ErrorCode::unavailable,
                              std::string("cannot create pipes: ") + std::strerror(e));
        }
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        if (with_stdin)
            posix_spawn_file_actions_adddup2(&actions, in[0], 0);
        else
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&actions, out[1], 1);
        posix_spawn_file_actions_adddup2(&actions, err[1], 2);
        // Nothing else of the daemon's: a descriptor opened without O_CLOEXEC (std::ifstream, a library's)
        // would otherwise live on in the job, and in whatever of it outlives the daemon (issue 14, item 17).
        posix_spawn_file_actions_addclosefrom_np(&actions, 3);
        if (!options_.cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, options_.cwd.c_str());
        posix_spawnattr_t attr;
        posix_spawnattr_init(&attr);
        // A new session and process group (the child leads it), so that terminate() reaches
        // grandchildren too; the signals the daemon ignores or handles back to their defaults; none
        // blocked.
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
        sigset_t defaults, none;
        sigemptyset(&defaults);
        for (int sig :
             {SIGPIPE, SIGHUP, SIGINT, SIGTERM, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM, SIGXFSZ})
            sigaddset(&defaults, sig);
        // glibc's child sets its two internal signals (32, 33: thread cancellation, setxid) to SIG_IGN,
        // which would outlive the exec; sigaddset refuses them, so their bits are set by hand.
        for (int sig : {32, 33}) {
            constexpr std::size_t bits = 8 * sizeof(defaults.__val[0]);
            defaults.__val[static_cast<std::size_t>(sig - 1) / bits] |=
                1UL << (static_cast<std::size_t>(sig - 1) % bits);
        }
        sigemptyset(&none);
        posix_spawnattr_setsigdefault(&attr, &defaults);
        posix_spawnattr_setsigmask(&attr, &none);
        pid_t pid = 0;
        spawned_ns_ = uv_hrtime();
        int rc = ::posix_spawn(&pid, program.c_str(), &actions, &attr, args.data(), envp.data());
        posix_spawn_file_actions_destroy(&actions);
        posix_spawnattr_destroy(&attr);
        if (rc != 0) {
            close_fds();
            self_.reset();
            return make_error(ErrorCode::unavailable, uv_strerror(-rc));
        }
        spawn_ledger().note(pid, spawned_ns_);
        ::close(out[1]);
        ::close(err[1]);
        if (with_stdin) ::close(in[0]);
        pid_ = pid;
        pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
        if (pidfd_ < 0) {
            // Out of descriptors: without a way to see its exit, the child cannot be ours to run.
            int e = errno;
            ::kill(-pid, SIGKILL);
            ::waitpid(pid, nullptr, 0); // at once: it was killed
            ::close(out[0]);
            ::close(err[0]);
            if (with_stdin) ::close(in[1]);
            pid_ = 0;
            self_.reset();
            return make_error(ErrorCode::unavailable,
                              std::string("cannot watch the child: ") + std::strerror(e));
        }
        init_pipe(out_);
        uv_pipe_open(&out_.uv, out[0]);
        init_pipe(err_);
        uv_pipe_open(&err_.uv, err[0]);
        if (with_stdin) {
            init_pipe(in_);
            uv_pipe_open(&in_.uv, in[1]);
        }
        uv_timer_init(loop_, &timer_);
        timer_.data = this;
        ++open_;
        uv_poll_init(loop_, &exit_poll_, pidfd_);
        exit_poll_.data = this;
        ++open_;
        watching_pidfd_ = true;
        uv_poll_start(&exit_poll_, UV_READABLE,
                      [](uv_poll_t* h, int, int) { static_cast<Core*>(h->data)->reap(); });
        start_reading(out_);
        start_reading(err_);
        if (options_.stdin_data) start_writing();
        if (options_.timeout_ms) arm(Stage::timeout, *options_.timeout_ms);
        return {};
    }

    // The pidfd is readable: the child has exited (it stays a zombie until this waitpid).
    void reap() {
        // While the leader is a zombie, its pid (the group's id) cannot be reused: the rest of the group
        // is still the child's.
        if (!options_.marker.empty()) ::kill(-pid_, SIGTERM);
        int status = 0;
        pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r == 0 || (r < 0 && errno == EINTR)) return;
        uv_poll_stop(&exit_poll_);
        if (r < 0) return on_exit(0, 0); // reaped by someone else: the status is lost
        if (WIFSIGNALED(status)) return on_exit(0, WTERMSIG(status));
        on_exit(WEXITSTATUS(status), 0);
    }

    void terminate() {
        close_stdin();
        if (finished_ || killing_ || pid_ <= 0) return;
        killing_ = true;
        ::kill(-pid_, SIGTERM);
        arm(Stage::kill, options_.kill_after_ms);
    }

    void abandon() {
        abandoned_ = true;
        // Captures go now unless one of them is running (it is then dropped at the end).
        if (dispatching_ == 0) callbacks_ = {};
        terminate();
    }

    void close_stdin() { close_pipe(in_); }

    int pid() const { return pid_; }

  private:
    struct Pipe {
        uv_pipe_t uv;
        ChildStream stream = ChildStream::out;
        LineSplitter lines;
        bool open = false; // initialised and not yet closed
        bool eof = false;
    };
    enum class Stage { timeout, kill, drain };

    static uv_stream_t* stream_of(Pipe& p) { return reinterpret_cast<uv_stream_t*>(&p.uv); }

    void init_pipe(Pipe& p) {
        uv_pipe_init(loop_, &p.uv, 0);
        p.uv.data = this;
        p.open = true;
        ++open_;
    }

    void close_pipe(Pipe& p) {
        if (!p.open) return;
        p.open = false;
        close(reinterpret_cast<uv_handle_t*>(&p.uv));
    }

    void close(uv_handle_t* h) {
        if (uv_is_closing(h)) return;
        uv_close(h, [](uv_handle_t* handle) {
            Core* core = static_cast<Core*>(handle->data);
            // The last handle is closed: nothing of libuv points here any more.
            if (--core->open_ == 0) core->self_.reset();
        });
    }

    void start_reading(Pipe& p) {
        uv_read_start(
            stream_of(p),
            [](uv_handle_t* h, size_t, uv_buf_t* buf) {
                // One buffer serves both pipes: each read is handed over before the next is taken.
                Core* core = static_cast<Core*>(h->data);
                // Not value-initialised: zeroing 64 KiB per child costs more than the child's output.
                if (!core->buffer_) core->buffer_.reset(new char[kReadBuffer]);
                buf->base = core->buffer_.get();
                buf->len = kReadBuffer;
            },
            [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
                Core* core = static_cast<Core*>(s->data);
                Pipe& pipe = s == stream_of(core->out_) ? core->out_ : core->err_;
                if (n > 0)
                    core->deliver(pipe, std::string_view(buf->base, static_cast<size_t>(n)));
                else if (n < 0)
                    core->end_of(pipe); // UV_EOF, or a read error: either way no more comes
            });
    }

    void start_writing() {
        std::string& data = *options_.stdin_data;
        if (data.empty()) {
            if (!options_.keep_stdin_open) close_pipe(in_);
            return;
        }
        // libuv writes what the pipe takes now and the rest as it drains, while the loop goes on reading
        // the child's output: a child that writes a lot before it reads cannot deadlock against us.
        std::vector<uv_buf_t> bufs; // uv_buf_t holds an unsigned length
        constexpr size_t kMaxBuf = size_t{1} << 30;
        for (size_t at = 0; at < data.size(); at += kMaxBuf)
            bufs.push_back(
                uv_buf_init(data.data() + at, static_cast<unsigned>(std::min(kMaxBuf, data.size() - at))));
        write_req_.data = this;
        int rc = uv_write(&write_req_, stream_of(in_), bufs.data(), static_cast<unsigned>(bufs.size()),
                          [](uv_write_t* req, int) { static_cast<Core*>(req->data)->on_written(); });
        if (rc != 0 && !options_.keep_stdin_open) close_pipe(in_);
    }

    // Written, or the child closed its end (EPIPE), or the pipe is closing (ECANCELED): either way the
    // data is no longer needed.
    void on_written() {
        if (!options_.keep_stdin_open) close_pipe(in_);
        options_.stdin_data.reset();
    }

    void deliver(Pipe& p, std::string_view chunk) {
        if (abandoned_) return;
        ++dispatching_;
        if (callbacks_.on_chunk) callbacks_.on_chunk(p.stream, chunk);
        if (callbacks_.on_line && !abandoned_)
            p.lines.feed(chunk, [&](std::string line) {
                callbacks_.on_line(p.stream, std::move(line));
                return !abandoned_;
            });
        --dispatching_;
    }

    void end_of(Pipe& p) {
        if (p.eof) return;
        p.eof = true;
        std::optional<std::string> last = p.lines.finish();
        if (!abandoned_ && callbacks_.on_line && last) {
            ++dispatching_;
            callbacks_.on_line(p.stream, std::move(*last));
            --dispatching_;
        }
        close_pipe(p);
        maybe_finish();
    }

    void on_exit(int64_t status, int signal) {
        exited_ = true;
        exit_.code = status;
        exit_.signal = signal;
        close(watching_pidfd_ ? reinterpret_cast<uv_handle_t*>(&exit_poll_)
                              : reinterpret_cast<uv_handle_t*>(&process_));
        if (options_.keep_stdin_open) close_pipe(in_); // nobody reads it any more
        // The timer keeps running: until both pipes are at EOF, the timeout and the SIGKILL still apply
        // to what of the group holds them.
        if (!options_.marker.empty()) end_marked();
        maybe_finish();
    }

    // The child has exited: what else carries its marker is ended, found off the loop. The result does
    // not wait for the scan when the pipes are at EOF already. A short-lived child that started nothing
    // (spawn_ledger.hpp) has nothing left to find.
    void end_marked() {
        auto marker = options_.env.find(options_.marker);
        if (marker == options_.env.end()) return;
        if (!spawn_ledger().may_have_started(pid_, spawned_ns_, last_allocated_pid(), uv_hrtime())) return;
        std::weak_ptr<Core> weak = weak_from_this();
        find_marked_processes_async(
            loop_, marker->first, marker->second,
            [weak, loop = loop_, kill_after = options_.kill_after_ms](std::vector<MarkedProcess> found) {
                // Ended even when the child's state is gone: they are its processes all the same.
                end_processes(loop, std::move(found), kill_after, nullptr, [weak] {
                    if (auto core = weak.lock()) core->marked_gone();
                });
            });
    }

    // What still holds the pipes carries no marker (its environment was replaced): a moment to finish
    // writing, then the pipes are closed. A terminate() in progress drains them after its SIGKILL.
    void marked_gone() {
        if (finished_ || killing_) return;
        arm(Stage::drain, kDrainAfterKillMs);
    }

    void arm(Stage stage, std::uint64_t ms) {
        stage_ = stage;
        uv_update_time(loop_); // from now, not from the start of a long loop turn (as loop::Timer)
        uv_timer_start(
            &timer_, [](uv_timer_t* t) { static_cast<Core*>(t->data)->on_timer(); }, ms, 0);
    }

    void on_timer() {
        switch (stage_) {
        case Stage::timeout:
            // With a marker, an exited child's result is its own: what runs on is being ended.
            if (!exited_ || options_.marker.empty()) timed_out_ = true;
            terminate();
            return;
        case Stage::kill:
            // The group id cannot be reused while a member holds it, and without members the pipes
            // would be at EOF already.
            ::kill(-pid_, SIGKILL);
            arm(Stage::drain, kDrainAfterKillMs);
            return;
        case Stage::drain:
            if (!exited_) return arm(Stage::drain, kDrainAfterKillMs);
            end_of(out_);
            end_of(err_);
            return;
        }
    }

    void maybe_finish() {
        // The result is final once the exit has arrived and both pipes are at EOF (Neovim #30846).
        if (finished_ || !exited_ || !out_.eof || !err_.eof) return;
        finished_ = true;
        uv_timer_stop(&timer_);
        close(reinterpret_cast<uv_handle_t*>(&timer_));
        close_pipe(in_); // a pending write is cancelled
        ChildExit exit = exit_;
        exit.timed_out = timed_out_;
        auto on_exit = std::move(callbacks_.on_exit);
        callbacks_ = {};
        if (abandoned_ || !on_exit) return;
        ++dispatching_;
        on_exit(exit);
        --dispatching_;
    }

    uv_loop_t* loop_;
    ChildOptions options_;
    ChildCallbacks callbacks_;
    std::shared_ptr<Core> self_;
    uv_process_t process_{};
    uv_poll_t exit_poll_{}; // posix_spawn: the pidfd, readable at the exit
    int pidfd_ = -1;
    bool watching_pidfd_ = false;
    uv_timer_t timer_{};
    uv_write_t write_req_{};
    Pipe in_, out_, err_;
    std::unique_ptr<char[]> buffer_;
    ChildExit exit_;
    Stage stage_ = Stage::timeout;
    int open_ = 0; // handles initialised and not yet closed
    int pid_ = 0;
    std::uint64_t spawned_ns_ = 0; // uv_hrtime() just before the spawn
    int dispatching_ = 0;          // callbacks running now
    bool exited_ = false;
    bool timed_out_ = false;
    bool killing_ = false;
    bool finished_ = false;
    bool abandoned_ = false;
};

Result<std::unique_ptr<ChildProcess>> ChildProcess::spawn(uv_loop_t* loop, ChildOptions options,
                                                          ChildCallbacks callbacks) {
    auto core = std::make_shared<Core>(loop, std::move(options), std::move(callbacks));
    if (auto started = core->spawn(); !started) return started.error();
    return std::make_unique<ChildProcess>(std::move(core));
}

ChildProcess::ChildProcess(std::shared_ptr<Core> core) : core_(std::move(core)) {}

ChildProcess::~ChildProcess() {
    if (core_) core_->abandon();
}

void ChildProcess::terminate() {
    core_->terminate();
}

void ChildProcess::close_stdin() {
    core_->close_stdin();
}

int ChildProcess::pid() const {
    return core_->pid();
}

} // namespace luaflow::loop
