#include "daemon/exec/process_runner.hpp"

#include "common/log.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace luaflow::exec {

namespace fs = std::filesystem;

std::map<std::string, std::string> passed_environment(const std::vector<std::string>& pass) {
    std::map<std::string, std::string> env;
    for (const std::string& name : pass) {
        if (const char* v = std::getenv(name.c_str())) env[name] = v;
    }
    return env;
}

namespace {

// A running child. It owns itself while libuv holds any of its handles (Neovim proc.c refcounts a
// child across its handle and pipes), so it outlives a cancelled or destroyed attempt until the
// process has exited and both pipes are closed.
class Job : public std::enable_shared_from_this<Job> {
  public:
    Job(uv_loop_t* loop, LineSink sink, const AttemptSpec& spec)
        : loop_(loop), sink_(std::move(sink)), spec_(spec) {}

    // Set right after a successful spawn: no callback of the child can run before the loop turns.
    void set_done(AttemptDone done) { done_ = std::move(done); }

    // Returns an error message when the child could not start.
    std::string spawn(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                      const std::string& cwd, const std::string& output_file) {
        output_file_ = output_file;
        std::vector<char*> args;
        for (const std::string& a : argv)
            args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        std::vector<std::string> env_strings;
        for (const auto& [k, v] : env)
            env_strings.push_back(k + "=" + v);
        std::vector<char*> envp;
        for (std::string& e : env_strings)
            envp.push_back(e.data());
        envp.push_back(nullptr);

        uv_pipe_init(loop_, &out_.pipe, 0);
        uv_pipe_init(loop_, &err_.pipe, 0);
        out_.job = err_.job = this;
        out_.stream = "stdout";
        err_.stream = "stderr";
        uv_stdio_container_t stdio[3];
        stdio[0].flags = UV_IGNORE;
        stdio[1].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
        stdio[1].data.stream = reinterpret_cast<uv_stream_t*>(&out_.pipe);
        stdio[2].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
        stdio[2].data.stream = reinterpret_cast<uv_stream_t*>(&err_.pipe);

        uv_process_options_t opts{};
        opts.file = args[0];
        opts.args = args.data();
        opts.env = envp.data();
        opts.cwd = cwd.c_str();
        // A new process group (the child leads it), so that a timeout reaches grandchildren too.
        opts.flags = UV_PROCESS_DETACHED;
        opts.stdio_count = 3;
        opts.stdio = stdio;
        opts.exit_cb = [](uv_process_t* p, int64_t status, int signal) {
            static_cast<Job*>(p->data)->on_exit(status, signal);
        };
        process_.data = this;
        self_ = shared_from_this();
        int rc = uv_spawn(loop_, &process_, &opts);
        open_handles_ = 2; // the pipes
        if (rc != 0) {
            // libuv docs: even when uv_spawn fails, the handle must be closed.
            ++open_handles_;
            exited_ = true;
            close_handle(reinterpret_cast<uv_handle_t*>(&process_));
            close_handle(reinterpret_cast<uv_handle_t*>(&out_.pipe));
            close_handle(reinterpret_cast<uv_handle_t*>(&err_.pipe));
            return std::string("cannot start '") + argv[0] + "': " + uv_strerror(rc);
        }
        ++open_handles_;
        pid_ = process_.pid;
        start_reading(out_);
        start_reading(err_);
        if (spec_.timeout) {
            timer_init();
            uv_timer_start(
                &timer_, [](uv_timer_t* t) { static_cast<Job*>(t->data)->on_timeout(); },
                static_cast<std::uint64_t>(*spec_.timeout), 0);
        }
        return {};
    }

    // No report after this; the process group gets SIGTERM, then SIGKILL.
    void abandon() {
        done_ = nullptr;
        terminate();
    }

  private:
    struct Pipe {
        uv_pipe_t pipe;
        Job* job = nullptr;
        const char* stream = "";
        std::string partial;
        bool eof = false;
    };

    void timer_init() {
        if (timer_ready_) return;
        uv_timer_init(loop_, &timer_);
        timer_.data = this;
        timer_ready_ = true;
        ++open_handles_;
    }

    void start_reading(Pipe& p) {
        p.pipe.data = &p;
        uv_read_start(
            reinterpret_cast<uv_stream_t*>(&p.pipe),
            [](uv_handle_t*, size_t suggested, uv_buf_t* buf) {
                // A fresh buffer per read; on_read takes ownership.
                buf->base = new char[suggested];
                buf->len = suggested;
            },
            [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
                auto* pipe = static_cast<Pipe*>(s->data);
                std::unique_ptr<char[]> owned(buf->base);
                pipe->job->on_read(*pipe, n, buf->base);
            });
    }

    void on_read(Pipe& p, ssize_t n, const char* data) {
        if (n > 0) {
            p.partial.append(data, static_cast<size_t>(n));
            size_t start = 0;
            for (size_t nl; (nl = p.partial.find('\n', start)) != std::string::npos; start = nl + 1) {
                emit(p, p.partial.substr(start, nl - start));
            }
            p.partial.erase(0, start);
            return;
        }
        if (n < 0) {
            // Process has exited or closed its end; there could still be a last line without newline.
            if (!p.partial.empty()) emit(p, std::move(p.partial));
            p.partial.clear();
            p.eof = true;
            close_handle(reinterpret_cast<uv_handle_t*>(&p.pipe));
            maybe_finish();
        }
    }

    void emit(Pipe& p, std::string line) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (done_)
            sink_(spec_.execution, spec_.def->actions[spec_.action].name, spec_.attempt, p.stream,
                  std::move(line));
    }

    void on_exit(int64_t status, int signal) {
        exited_ = true;
        exit_status_ = status;
        term_signal_ = signal;
        close_handle(reinterpret_cast<uv_handle_t*>(&process_));
        if (timer_ready_) uv_timer_stop(&timer_);
        maybe_finish();
    }

    void on_timeout() {
        if (killing_) {
            if (!exited_) ::kill(-pid_, SIGKILL);
            return;
        }
        timed_out_ = true;
        terminate();
    }

    void terminate() {
        if (exited_ || killing_ || pid_ <= 0) return;
        killing_ = true;
        ::kill(-pid_, SIGTERM);
        timer_init();
        uv_timer_start(
            &timer_, [](uv_timer_t* t) { static_cast<Job*>(t->data)->on_timeout(); }, kKillAfterMs, 0);
    }

    void maybe_finish() {
        // The result is final once the exit has arrived and both pipes are at EOF (Neovim #30846).
        if (!exited_ || !out_.eof || !err_.eof || finished_) return;
        finished_ = true;
        if (timer_ready_) close_handle(reinterpret_cast<uv_handle_t*>(&timer_));
        if (done_) {
            AttemptDone done = std::move(done_);
            done_ = nullptr;
            done(result());
        }
    }

    AttemptResult result() {
        AttemptResult r;
        if (term_signal_ == 0) r.exit_code = static_cast<int>(exit_status_);
        if (timed_out_) {
            r.kind = AttemptResult::Kind::timed_out;
            r.error = "timed out after " + format_duration(*spec_.timeout);
            return r;
        }
        if (term_signal_ != 0) {
            r.kind = AttemptResult::Kind::failed;
            r.error = std::string("killed by signal ") + strsignal(term_signal_);
            return r;
        }
        if (exit_status_ != 0) {
            r.kind = AttemptResult::Kind::failed;
            r.error = "exit code " + std::to_string(exit_status_);
            return r;
        }
        r.output = {{"exit_code", 0}};
        std::ifstream in(output_file_);
        if (in) {
            std::stringstream ss;
            ss << in.rdbuf();
            std::string text = ss.str();
            if (text.find_first_not_of(" \t\r\n") != std::string::npos) {
                json j = json::parse(text, nullptr, false);
                if (j.is_discarded()) {
                    r.kind = AttemptResult::Kind::failed;
                    r.error = "LUAFLOW_OUTPUT (" + output_file_ + ") does not hold JSON";
                    return r;
                }
                r.output = std::move(j);
            }
        }
        return r;
    }

    void close_handle(uv_handle_t* h) {
        if (uv_is_closing(h)) return;
        uv_close(h, [](uv_handle_t* handle) {
            Job* job = handle_job(handle);
            if (--job->open_handles_ == 0) job->self_.reset(); // the last handle is closed: free the job
        });
    }

    static Job* handle_job(uv_handle_t* h) {
        if (h->type == UV_NAMED_PIPE) return static_cast<Pipe*>(h->data)->job;
        return static_cast<Job*>(h->data);
    }

    uv_loop_t* loop_;
    LineSink sink_;
    AttemptSpec spec_;
    AttemptDone done_;
    std::shared_ptr<Job> self_;
    uv_process_t process_{};
    uv_timer_t timer_{};
    Pipe out_, err_;
    std::string output_file_;
    int open_handles_ = 0;
    int pid_ = 0;
    int64_t exit_status_ = 0;
    int term_signal_ = 0;
    bool exited_ = false;
    bool timer_ready_ = false;
    bool timed_out_ = false;
    bool killing_ = false;
    bool finished_ = false;
};

class ProcessAttempt final : public Attempt {
  public:
    ProcessAttempt(uv_loop_t* loop, LineSink sink, const AttemptSpec& spec, std::vector<std::string> argv,
                   std::map<std::string, std::string> env, AttemptDone done)
        : loop_(loop), sink_(std::move(sink)), spec_(spec), argv_(std::move(argv)), env_(std::move(env)),
          done_(std::move(done)) {}

    ~ProcessAttempt() override {
        if (auto job = job_.lock()) job->abandon();
    }

    void start() override {
        const scripting::ActionDef& action = spec_.def->actions[spec_.action];
        std::error_code ec;
        fs::create_directories(spec_.scratch, ec);
        if (ec) return fail("cannot create scratch directory " + spec_.scratch + ": " + ec.message());
        std::string io_dir = spec_.scratch + "/.luaflow";
        fs::create_directories(io_dir, ec);
        std::string input_file = io_dir + "/input.json";
        std::string output_file = io_dir + "/output.json";
        fs::remove(output_file, ec);
        {
            json doc = {{"input", spec_.input},
                        {"outputs", spec_.outputs},
                        {"shared", spec_.shared},
                        {"config", action.config},
                        {"execution", execution_json(spec_)}};
            std::ofstream out(input_file);
            out << doc.dump();
            if (!out) return fail("cannot write " + input_file);
        }
        std::map<std::string, std::string> env = env_;
        for (const auto& [k, v] : action.env)
            env[k] = v;
        env["LUAFLOW_INPUT"] = input_file;
        env["LUAFLOW_OUTPUT"] = output_file;
        env["LUAFLOW_SCRATCH"] = spec_.scratch;
        std::string cwd = action.cwd.empty() ? spec_.scratch : action.cwd;
        auto job = std::make_shared<Job>(loop_, sink_, spec_);
        std::string err = job->spawn(argv_, env, cwd, output_file);
        if (!err.empty()) return fail(err);
        job->set_done(std::move(done_));
        job_ = job;
    }

    void cancel() override {
        if (auto job = job_.lock()) job->abandon();
    }

  private:
    void fail(std::string message) {
        AttemptResult r;
        r.kind = AttemptResult::Kind::failed;
        r.error = std::move(message);
        AttemptDone done = std::move(done_);
        if (done) done(std::move(r));
    }

    uv_loop_t* loop_;
    LineSink sink_;
    AttemptSpec spec_;
    std::vector<std::string> argv_;
    std::map<std::string, std::string> env_;
    AttemptDone done_;
    std::weak_ptr<Job> job_;
};

} // namespace

ProcessRunner::ProcessRunner(uv_loop_t* loop, LineSink sink, std::map<std::string, std::string> base_env)
    : loop_(loop), sink_(std::move(sink)), base_env_(std::move(base_env)) {}

std::unique_ptr<Attempt> ProcessRunner::run(const AttemptSpec& spec, std::vector<std::string> argv,
                                            AttemptDone done) {
    return std::make_unique<ProcessAttempt>(loop_, sink_, spec, std::move(argv), base_env_, std::move(done));
}

} // namespace luaflow::exec
