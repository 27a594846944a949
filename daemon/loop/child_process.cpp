#include "daemon/loop/child_process.hpp"

#include <algorithm>
#include <csignal>

namespace luaflow::loop {

namespace {

constexpr std::size_t kReadBuffer = 64 * 1024;
// After the SIGKILL, how long the pipes may stay open once the child itself has exited. Whatever still
// holds them left the process group (setsid); waiting for it would keep the result forever.
constexpr std::uint64_t kDrainAfterKillMs = 1000;

} // namespace

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
        init_pipe(out_);
        init_pipe(err_);
        uv_stdio_container_t stdio[3];
        if (options_.stdin_data) {
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
        start_reading(out_);
        start_reading(err_);
        if (options_.stdin_data) start_writing();
        if (options_.timeout_ms) arm(Stage::timeout, *options_.timeout_ms);
        return {};
    }

    void terminate() {
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

    int pid() const { return pid_; }

  private:
    struct Pipe {
        uv_pipe_t uv;
        ChildStream stream = ChildStream::out;
        std::string partial; // the start of a line not yet ended
        bool open = false;   // initialised and not yet closed
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
                if (!core->buffer_) core->buffer_ = std::make_unique<char[]>(kReadBuffer);
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
        if (data.empty()) return close_pipe(in_);
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
        if (rc != 0) close_pipe(in_);
    }

    // Written, or the child closed its end (EPIPE), or the pipe is closing (ECANCELED): either way the
    // data is no longer needed.
    void on_written() {
        close_pipe(in_);
        options_.stdin_data.reset();
    }

    void deliver(Pipe& p, std::string_view chunk) {
        if (abandoned_) return;
        ++dispatching_;
        if (callbacks_.on_chunk) callbacks_.on_chunk(p.stream, chunk);
        if (callbacks_.on_line && !abandoned_) {
            p.partial.append(chunk);
            size_t start = 0;
            for (size_t nl; !abandoned_ && (nl = p.partial.find('\n', start)) != std::string::npos;
                 start = nl + 1)
                emit_line(p, p.partial.substr(start, nl - start));
            p.partial.erase(0, start);
        }
        --dispatching_;
    }

    void emit_line(Pipe& p, std::string line) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        callbacks_.on_line(p.stream, std::move(line));
    }

    void end_of(Pipe& p) {
        if (p.eof) return;
        p.eof = true;
        if (!abandoned_ && callbacks_.on_line && !p.partial.empty()) {
            ++dispatching_;
            emit_line(p, std::move(p.partial));
            --dispatching_;
        }
        p.partial.clear();
        close_pipe(p);
        maybe_finish();
    }

    void on_exit(int64_t status, int signal) {
        exited_ = true;
        exit_.code = status;
        exit_.signal = signal;
        close(reinterpret_cast<uv_handle_t*>(&process_));
        // The timer keeps running: until both pipes are at EOF, the timeout and the SIGKILL still apply
        // to what of the group holds them.
        maybe_finish();
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
            timed_out_ = true;
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
    uv_timer_t timer_{};
    uv_write_t write_req_{};
    Pipe in_, out_, err_;
    std::unique_ptr<char[]> buffer_;
    ChildExit exit_;
    Stage stage_ = Stage::timeout;
    int open_ = 0; // handles initialised and not yet closed
    int pid_ = 0;
    int dispatching_ = 0; // callbacks running now
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

int ChildProcess::pid() const {
    return core_->pid();
}

} // namespace luaflow::loop
