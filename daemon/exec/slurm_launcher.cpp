#include "daemon/exec/slurm_launcher.hpp"

#include "common/duration.hpp"
#include "common/log.hpp"
#include "loop/line_splitter.hpp"
#include "loop/thread_pool.hpp"
#include "loop/uv_handle.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <set>

extern char** environ;

namespace luaflow::exec {

namespace slurm {

// Slurm commands whose end nobody waits for (scancel): each runs until it exits, even after the Job that
// started it and the launcher are gone (it holds this, uvw's self-owning resources); a failure is
// written to the daemon's log.
class Detached : public std::enable_shared_from_this<Detached> {
  public:
    explicit Detached(uv_loop_t* loop) : loop_(loop) {
        for (char** e = environ; e && *e; ++e) {
            std::string_view entry(*e);
            size_t eq = entry.find('=');
            if (eq != std::string_view::npos)
                env_.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
        }
    }

    // The daemon's own environment: where the Slurm tools find their cluster (SLURM_CONF).
    const std::map<std::string, std::string>& env() const { return env_; }

    void run(std::vector<std::string> argv) {
        std::string what = argv[0] + (argv.size() > 1 ? " " + argv.back() : "");
        auto err = std::make_shared<std::string>();
        std::uint64_t id = next_++;
        loop::ChildOptions options;
        options.argv = std::move(argv);
        options.env = env_;
        loop::ChildCallbacks callbacks;
        callbacks.on_chunk = [err](loop::ChildStream s, std::string_view chunk) {
            if (s == loop::ChildStream::err) err->append(chunk);
        };
        callbacks.on_exit = [self = shared_from_this(), id, what, err](const loop::ChildExit& exit) {
            if (exit.code != 0 || exit.signal != 0)
                log::warn("slurm: '%s' failed: %s", what.c_str(), trim(*err).c_str());
            self->children_.erase(id); // allowed inside its own on_exit
        };
        auto child = loop::ChildProcess::spawn(loop_, std::move(options), std::move(callbacks));
        if (!child)
            return log::warn("slurm: cannot start '%s': %s", what.c_str(), child.error().message.c_str());
        children_.emplace(id, std::move(*child));
    }

  private:
    uv_loop_t* loop_;
    std::map<std::string, std::string> env_;
    std::map<std::uint64_t, std::unique_ptr<loop::ChildProcess>> children_;
    std::uint64_t next_ = 0;
};

} // namespace slurm

namespace {

using loop::ChildStream;
using slurm::JobState;

constexpr std::uint64_t kFirstPollMs = 1000; // the poll interval at first...
constexpr std::uint64_t kMaxPollMs = 5000;   // ...growing with the job's age (a tenth of it) to this
constexpr std::uint64_t kTailMs = 500;
constexpr std::size_t kTailChunk = 1 << 20; // per file and read; more is read at once after it

// What the tail reads on the thread pool: each file's bytes past its offset.
struct TailRead {
    std::string path[2];
    std::uint64_t offset[2] = {0, 0};
    std::string data[2];
    bool final = false; // started after the job had ended
};

void read_tails(TailRead& r) {
    for (int i = 0; i < 2; ++i) {
        // Opened anew each time: on NFS, close-to-open consistency is what makes new data visible.
        int fd = ::open(r.path[i].c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue; // not there yet (or never: a job cancelled while pending)
        struct stat st {};
        // Most ticks find nothing new: no buffer for them.
        if (::fstat(fd, &st) != 0 || static_cast<std::uint64_t>(st.st_size) <= r.offset[i]) {
            ::close(fd);
            continue;
        }
        auto want = static_cast<size_t>(
            std::min<std::uint64_t>(kTailChunk, static_cast<std::uint64_t>(st.st_size) - r.offset[i]));
        r.data[i].resize(want);
        size_t got = 0;
        while (got < want) {
            ssize_t n =
                ::pread(fd, r.data[i].data() + got, want - got, static_cast<off_t>(r.offset[i] + got));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            got += static_cast<size_t>(n);
        }
        r.data[i].resize(got);
        ::close(fd);
    }
}

// One job's state. Libuv's callbacks (children, timers, thread-pool work) hold it, so it outlives a
// SlurmJob that is gone: an abandoned core only finishes what must still happen (scancel).
class JobCore : public std::enable_shared_from_this<JobCore> {
  public:
    JobCore(uv_loop_t* loop, std::shared_ptr<slurm::Detached> detached, JobSpec spec, JobCallbacks callbacks,
            slurm::JobFiles files, std::vector<std::string> sbatch)
        : loop_(loop), detached_(std::move(detached)), spec_(std::move(spec)),
          callbacks_(std::move(callbacks)), files_(std::move(files)), sbatch_(std::move(sbatch)),
          poll_timer_(loop), tail_timer_(loop), timeout_timer_(loop) {
        tails_[0].path = files_.stdout_file;
        tails_[1].path = files_.stderr_file;
        tails_[1].stream = ChildStream::err;
    }

    // Nothing has started when this fails.
    Result<void> begin() {
        auto error = std::make_shared<std::string>();
        std::string script = slurm::batch_script(spec_);
        auto queued = loop::run_in_pool(
            loop_, [files = files_, script, error] { *error = write_script(files, script); },
            [self = shared_from_this(), error] { self->written(*error); });
        if (!queued) return queued.error();
        return {};
    }

    // The Job is gone: no callback any more, and a submitted job is scancelled.
    void abandon() {
        if (abandoned_) return;
        abandoned_ = true;
        if (dispatching_ == 0) callbacks_ = {};
        poll_timer_.stop();
        tail_timer_.stop();
        timeout_timer_.stop();
        // sbatch goes on: the job it submits is scancelled once its id is known (submitted()).
        if (phase_ == Phase::submitting) return;
        tool_.reset();
        if (phase_ == Phase::following) scancel();
        phase_ = Phase::done;
    }

  private:
    enum class Phase { writing, submitting, following, draining, done };
    using ToolDone =
        std::function<void(const loop::ChildExit&, const std::string& out, const std::string& err)>;

    struct Tail {
        std::string path;
        ChildStream stream = ChildStream::out;
        std::uint64_t offset = 0;
        loop::LineSplitter lines;
    };

    // On the thread pool: the directory, the script (atomically), and no stale output of an earlier try.
    static std::string write_script(const slurm::JobFiles& files, const std::string& script) {
        namespace fs = std::filesystem;
        std::error_code ec;
        fs::create_directories(fs::path(files.script).parent_path(), ec);
        if (ec) return ec.message();
        fs::remove(files.stdout_file, ec);
        fs::remove(files.stderr_file, ec);
        std::string tmp = files.script + ".tmp";
        // Only its owner reads it, from the start: the argv may hold secrets.
        int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) return std::strerror(errno);
        for (size_t at = 0; at < script.size();) {
            ssize_t n = ::write(fd, script.data() + at, script.size() - at);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                std::string why = std::strerror(errno);
                ::close(fd);
                return why;
            }
            at += static_cast<size_t>(n);
        }
        if (::close(fd) != 0) return std::strerror(errno);
        fs::rename(tmp, files.script, ec);
        return ec ? ec.message() : std::string();
    }

    void written(const std::string& error) {
        if (abandoned_) return; // nothing was submitted
        if (!error.empty())
            return finish_now(failure("cannot write the batch script " + files_.script + ": " + error));
        phase_ = Phase::submitting;
        run_tool(sbatch_, slurm::sbatch_env(spec_, environ),
                 [this](const loop::ChildExit& exit, const std::string& out, const std::string& err) {
                     submitted(exit, out, err);
                 });
    }

    void submitted(const loop::ChildExit& exit, const std::string& out, const std::string& err) {
        bool ok = exit.code == 0 && exit.signal == 0;
        std::optional<std::int64_t> id = ok ? slurm::parse_job_id(out) : std::nullopt;
        if (abandoned_) {
            phase_ = Phase::done;
            if (id) detached_->run({"scancel", std::to_string(*id)});
            // Submitted under a name that says which attempt it is.
            else if (ok)
                detached_->run({"scancel", "--name=luaflow:" + spec_.name});
            return;
        }
        if (!ok) {
            std::string why = one_line(err);
            if (why.empty())
                why = exit.signal ? "killed by signal " + std::to_string(exit.signal)
                                  : "exit code " + std::to_string(exit.code);
            return finish_now(failure("sbatch refused the job: " + why));
        }
        if (!id) return finish_now(failure("sbatch printed no job id: " + one_line(out)));
        job_id_ = *id;
        phase_ = Phase::following;
        submitted_at_ = uv_now(loop_);
        const std::string& partition = spec_.host.slurm.partition;
        note("submitted batch job " + std::to_string(job_id_) +
             (partition.empty() ? " to the default partition" : " to partition " + partition));
        poll_later();
    }

    // Runs one Slurm command (one at a time); `then` gets its exit and whole output, unless abandoned.
    void run_tool(std::vector<std::string> argv, std::map<std::string, std::string> env, ToolDone then) {
        std::string program = argv[0];
        struct Output {
            std::string out, err;
        };
        auto output = std::make_shared<Output>();
        loop::ChildOptions options;
        options.argv = std::move(argv);
        options.env = std::move(env);
        loop::ChildCallbacks callbacks;
        callbacks.on_chunk = [output](ChildStream s, std::string_view chunk) {
            (s == ChildStream::out ? output->out : output->err).append(chunk);
        };
        callbacks.on_exit = [self = shared_from_this(), output, then](const loop::ChildExit& exit) {
            self->tool_.reset(); // allowed inside its own on_exit
            // sbatch's answer is needed even then: its job must be cancelled.
            if (!self->abandoned_ || self->phase_ == Phase::submitting) then(exit, output->out, output->err);
        };
        auto child = loop::ChildProcess::spawn(loop_, std::move(options), std::move(callbacks));
        if (!child) {
            std::string message = "cannot start " + program + ": " + child.error().message;
            if (phase_ == Phase::submitting) return finish_now(failure(message));
            // The job runs on without us following it: it must not.
            scancel();
            return end_with(failure(message));
        }
        tool_ = std::move(*child);
    }

    void run_tool(std::vector<std::string> argv, ToolDone then) {
        run_tool(std::move(argv), detached_->env(), std::move(then));
    }

    std::string id() const { return std::to_string(job_id_); }

    void poll_later() {
        std::uint64_t age = uv_now(loop_) - submitted_at_;
        std::uint64_t delay = std::clamp<std::uint64_t>(age / 10, kFirstPollMs, kMaxPollMs);
        poll_timer_.start(delay, [this] {
            auto self = shared_from_this();
            poll();
        });
    }

    // While it is in the queue, squeue says how it is; once it has left, scontrol (or sacct) how it ended.
    void poll() {
        run_tool({"squeue", "-h", "-j", id(), "-o", "%T|%r"},
                 [this](const loop::ChildExit& exit, const std::string& out, const std::string& err) {
                     if (exit.code != 0 || exit.signal != 0) {
                         if (unknown_job(err)) return show();
                         tool_failed("squeue", err);
                         return poll_later();
                     }
                     std::optional<JobState> st = slurm::parse_squeue(out);
                     if (!st) return show();
                     observe(*st);
                     return slurm::is_final(st->state) ? show() : poll_later();
                 });
    }

    void show() {
        run_tool({"scontrol", "show", "job", id()},
                 [this](const loop::ChildExit& exit, const std::string& out, const std::string& err) {
                     if (exit.code != 0 || exit.signal != 0) {
                         if (unknown_job(err)) return account();
                         tool_failed("scontrol", err);
                         return poll_later();
                     }
                     std::optional<JobState> st = slurm::parse_scontrol(out);
                     if (st && slurm::is_final(st->state)) return ended(*st);
                     if (st)
                         observe(*st);
                     else
                         tool_failed("scontrol", "no JobState in: " + one_line(out));
                     poll_later();
                 });
    }

    // scontrol forgets a job MinJobAge (300 s by default) after its end; accounting, if there is any, not.
    void account() {
        run_tool({"sacct", "-n", "-P", "-j", id(), "-o", "State,ExitCode"},
                 [this](const loop::ChildExit& exit, const std::string& out, const std::string& err) {
                     std::optional<JobState> st =
                         exit.code == 0 && exit.signal == 0 ? slurm::parse_sacct(out) : std::nullopt;
                     if (st && slurm::is_final(st->state)) return ended(*st);
                     if (st) return poll_later(); // accounting lags behind the controller
                     end_with(failure("slurm job " + id() +
                                      " left the queue, and neither scontrol nor sacct knows how it ended: " +
                                      one_line(err.empty() ? out : err)));
                 });
    }

    static bool unknown_job(const std::string& err) {
        return err.find("Invalid job id") != std::string::npos;
    }

    // A transient failure (the controller restarting, say): written once, and the job is asked again.
    void tool_failed(const std::string& tool, const std::string& err) {
        std::string line = tool + " failed: " + one_line(err);
        if (line == last_failure_) return;
        last_failure_ = line;
        note(line);
    }

    void observe(const JobState& st) {
        if (st.state != last_.state || st.reason != last_.reason) {
            std::string reason = st.reason.empty() || st.reason == "None" ? "" : " (" + st.reason + ")";
            note("job " + id() + " " + st.state + reason);
            last_ = st;
        }
        if (started_ || st.state == "PENDING") return;
        // From here on, its output may grow, and the timeout counts: a job waiting in the queue has not
        // started, like a local job waiting for its resources.
        started_ = true;
        tail_timer_.start(
            kTailMs,
            [this] {
                auto self = shared_from_this();
                tail();
            },
            kTailMs);
        if (spec_.timeout_ms)
            timeout_timer_.start(*spec_.timeout_ms, [this] {
                auto self = shared_from_this();
                requested_.timed_out = true;
                note("job " + id() + " timed out after " +
                     format_duration(static_cast<Millis>(*spec_.timeout_ms)) + ": scancel");
                scancel();
            });
    }

    void scancel() {
        if (cancelled_ || job_id_ == 0) return;
        cancelled_ = true;
        detached_->run({"scancel", id()});
    }

    void ended(const JobState& end) {
        note("job " + id() + " " + end.state +
             (end.reason.empty() || end.reason == "None" ? "" : " (" + end.reason + ")") + ", ExitCode " +
             std::to_string(end.exit_code) + ":" + std::to_string(end.exit_signal));
        requested_.memory = spec_.allocation.memory;
        end_with(slurm::job_exit(job_id_, end, requested_));
    }

    // The exit comes once the files have been read to their end.
    void end_with(JobExit exit) {
        phase_ = Phase::draining;
        pending_exit_ = std::move(exit);
        poll_timer_.stop();
        tail_timer_.stop();
        timeout_timer_.stop();
        if (!reading_) tail();
    }

    void tail() {
        if (reading_) return;
        reading_ = true;
        auto read = std::make_shared<TailRead>();
        for (int i = 0; i < 2; ++i) {
            read->path[i] = tails_[i].path;
            read->offset[i] = tails_[i].offset;
        }
        read->final = phase_ == Phase::draining;
        auto queued = loop::run_in_pool(
            loop_, [read] { read_tails(*read); }, [self = shared_from_this(), read] { self->tailed(*read); });
        if (!queued) {
            // What was not read stays unread; the end must still come.
            reading_ = false;
            if (phase_ == Phase::draining) finish_now(std::move(pending_exit_));
        }
    }

    void tailed(TailRead& read) {
        reading_ = false;
        if (abandoned_) return;
        bool more = false;
        for (int i = 0; i < 2 && !abandoned_; ++i) {
            tails_[i].offset += read.data[i].size();
            more = more || read.data[i].size() == kTailChunk;
            deliver(tails_[i], read.data[i]);
        }
        if (abandoned_ || phase_ != Phase::draining) return;
        if (!read.final || more) return tail();
        for (Tail& t : tails_) {
            if (auto last = t.lines.finish()) program_line(t, std::move(*last));
        }
        finish_now(std::move(pending_exit_));
    }

    void deliver(Tail& t, const std::string& chunk) {
        t.lines.feed(chunk, [&](std::string line) {
            program_line(t, std::move(line));
            return !abandoned_;
        });
    }

    // A line the program wrote (not one of our notes): its last stderr lines explain a failure.
    void program_line(const Tail& t, std::string line) {
        if (t.stream == ChildStream::err) keep_stderr_line(stderr_tail_, line);
        emit(t.stream, std::move(line));
    }

    void note(std::string line) { emit(ChildStream::err, "slurm: " + line); }

    void emit(ChildStream stream, std::string line) {
        if (abandoned_ || !callbacks_.on_line) return;
        ++dispatching_;
        callbacks_.on_line(stream, std::move(line));
        if (--dispatching_ == 0 && abandoned_) callbacks_ = {};
    }

    static JobExit failure(std::string message) {
        JobExit exit;
        exit.error = std::move(message);
        return exit;
    }

    static std::string one_line(const std::string& text) {
        std::string s = slurm::trim(text);
        std::replace(s.begin(), s.end(), '\n', ' ');
        return s;
    }

    void finish_now(JobExit exit) {
        exit.stderr_tail.emplace(stderr_tail_.begin(), stderr_tail_.end());
        phase_ = Phase::done;
        poll_timer_.stop();
        tail_timer_.stop();
        timeout_timer_.stop();
        auto on_exit = std::move(callbacks_.on_exit);
        callbacks_ = {};
        if (!abandoned_ && on_exit) on_exit(exit); // may destroy the Job
    }

    uv_loop_t* loop_;
    std::shared_ptr<slurm::Detached> detached_;
    JobSpec spec_;
    JobCallbacks callbacks_;
    std::deque<std::string> stderr_tail_; // the program's own (keep_stderr_line)
    slurm::JobFiles files_;
    std::vector<std::string> sbatch_;
    loop::Timer poll_timer_, tail_timer_, timeout_timer_;
    std::unique_ptr<loop::ChildProcess> tool_;
    Tail tails_[2];
    Phase phase_ = Phase::writing;
    std::int64_t job_id_ = 0;
    std::uint64_t submitted_at_ = 0;
    JobState last_;            // the state last written to the log
    std::string last_failure_; // the tool failure last written to the log
    slurm::Requested requested_;
    JobExit pending_exit_;
    int dispatching_ = 0; // on_line calls running now
    bool started_ = false;
    bool cancelled_ = false;
    bool reading_ = false;
    bool abandoned_ = false;
};

class SlurmJob final : public Job {
  public:
    explicit SlurmJob(std::shared_ptr<JobCore> core) : core_(std::move(core)) {}
    ~SlurmJob() override { core_->abandon(); }

  private:
    std::shared_ptr<JobCore> core_;
};

} // namespace

SlurmLauncher::SlurmLauncher(uv_loop_t* loop)
    : loop_(loop), detached_(std::make_shared<slurm::Detached>(loop)) {}

SlurmLauncher::~SlurmLauncher() = default;

Result<std::unique_ptr<Job>> SlurmLauncher::start(JobSpec spec, JobCallbacks callbacks) {
    if (spec.argv.empty()) return make_error(ErrorCode::invalid, "no program given");
    if (spec.scratch.empty())
        return make_error(ErrorCode::invalid, "slurm: the job has no scratch directory");
    slurm::JobFiles files = slurm::job_files(spec.scratch);
    auto argv = slurm::sbatch_argv(spec, files);
    if (!argv) return argv.error();
    auto core = std::make_shared<JobCore>(loop_, detached_, std::move(spec), std::move(callbacks),
                                          std::move(files), std::move(*argv));
    if (auto begun = core->begin(); !begun) return begun.error();
    return std::unique_ptr<Job>(std::make_unique<SlurmJob>(std::move(core)));
}

void SlurmLauncher::cancel_by_name(const std::string& job_name) {
    detached_->run({"scancel", "--name=luaflow:" + job_name});
}

} // namespace luaflow::exec
