#include "daemon/exec/process_runner.hpp"

#include "common/size.hpp"
#include "loop/thread_pool.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
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

std::optional<std::string> out_of_memory_line(const std::vector<std::string>& tail) {
    static const char* const phrases[] = {"memoryerror",      "cannot allocate memory", "out of memory",
                                          "bad_alloc",        "memory allocation of",   "failed to allocate",
                                          "memory exhausted", "allocation failed"};
    for (auto it = tail.rbegin(); it != tail.rend(); ++it) {
        std::string lower = *it;
        std::transform(lower.begin(), lower.end(), lower.begin(),
                       [](unsigned char c) { return std::tolower(c); });
        for (const char* p : phrases)
            if (lower.find(p) != std::string::npos) return *it;
    }
    return std::nullopt;
}

std::string shorten_line(std::string line, std::size_t max) {
    if (line.size() <= max) return line;
    std::size_t cut = max;
    // Not inside a UTF-8 sequence: back up over continuation bytes (0x80 to 0xBF) to the start of one.
    while (cut > 0 && (static_cast<unsigned char>(line[cut]) & 0xC0) == 0x80)
        --cut;
    line.resize(cut);
    return line + "\u2026";
}

std::string failure_message(std::int64_t code, int signal, const std::vector<std::string>& tail,
                            const Redact& redact) {
    std::string message = signal != 0 ? std::string("killed by signal ") + strsignal(signal)
                                      : "exit code " + std::to_string(code);
    for (auto it = tail.rbegin(); it != tail.rend(); ++it) {
        if (it->find_first_not_of(" \t\r\f\v") == std::string::npos) continue;
        std::string line = *it;
        line.erase(0, line.find_first_not_of(" \t")); // an indented traceback line reads better without
        // Masked before the cut: a secret cut in two would no longer be recognised.
        if (redact) line = redact(std::move(line));
        return message + ": " + shorten_line(std::move(line), kErrorLineBytes);
    }
    return message;
}

namespace {

constexpr std::size_t kMaxOutputFile = 64u << 20; // LUAFLOW_OUTPUT larger than this fails the attempt

// One attempt of a `cmd` or `shell` action. It owns its job: a cancelled or destroyed attempt drops it,
// and the launcher stops it (SIGTERM to its process group, SIGKILL 10 s later).
class ProcessAttempt final : public Attempt {
  public:
    ProcessAttempt(uv_loop_t* loop, LineSink sink, LuaRunner& lua, Redact redact, AttemptSpec spec,
                   SubprocessPlan plan, AttemptDone done)
        : loop_(loop), sink_(std::move(sink)), lua_(lua), redact_(std::move(redact)), spec_(std::move(spec)),
          plan_(std::move(plan)), done_(std::move(done)) {
        // In the scratch directory itself: one mkdir per job, not two (ext4's inode allocation makes
        // each one cost about 0.1-0.3 ms, a fifth of a /bin/true job; bench/subprocess_bench.py).
        input_file_ = spec_.scratch + "/.luaflow-input.json";
        output_file_ = spec_.scratch + "/.luaflow-output.json";
    }

    ~ProcessAttempt() override { *alive_ = false; }

    void start() override {
        if (!plan_.expand) return prepare();
        expander_ = lua_.expand_argv(spec_, [this](AttemptResult r) { on_expanded(std::move(r)); });
        expander_->start();
    }

    // No report after this; the job is stopped.
    void cancel() override {
        done_ = nullptr;
        if (expander_) expander_->cancel();
        job_.reset();
    }

  private:
    void on_expanded(AttemptResult r) {
        if (!done_) return;
        if (r.kind != AttemptResult::Kind::succeeded) {
            r.error = "cmd: " + r.error;
            return report(std::move(r));
        }
        plan_.argv.clear();
        for (const json& a : r.output)
            plan_.argv.push_back(a.is_string() ? a.get<std::string>() : a.dump());
        prepare();
    }

    // The scratch directory and LUAFLOW_INPUT, written on the thread pool.
    void prepare() {
        const scripting::ActionDef& action = spec_.def->actions[spec_.action];
        json doc = {{"input", *spec_.input},
                    {"outputs", spec_.outputs->object(spec_.outputs_seen)},
                    {"shared", *spec_.shared},
                    {"config", action.config},
                    {"execution", execution_json(spec_)}};
        auto error = std::make_shared<std::string>();
        auto r = loop::run_in_pool(
            loop_,
            [doc = std::move(doc), dir = spec_.scratch, input = input_file_, output = output_file_,
             retried = spec_.attempt > 1, error] {
                // The execution's directory exists after its first job: mkdir the job's alone.
                auto make = [](const std::string& d) {
                    return ::mkdir(d.c_str(), 0755) == 0 || errno == EEXIST;
                };
                bool made = make(dir);
                // Its first job: the execution's directory, then the job's (create_directories would stat
                // every component of the path first).
                if (!made && errno == ENOENT) made = make(dir.substr(0, dir.rfind('/'))) && make(dir);
                if (!made) {
                    std::error_code ec;
                    fs::create_directories(dir, ec);
                    if (ec)
                        return void(*error = "cannot create scratch directory " + dir + ": " + ec.message());
                }
                if (retried) ::unlink(output.c_str()); // an earlier attempt's output is not this one's
                std::string text = doc.dump(-1, ' ', false, json::error_handler_t::replace);
                int fd = ::open(input.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (fd < 0) return void(*error = "cannot write " + input + ": " + std::strerror(errno));
                std::size_t done = 0;
                while (done < text.size()) {
                    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
                    if (n < 0 && errno == EINTR) continue;
                    if (n <= 0) {
                        *error = "cannot write " + input + ": " + std::strerror(errno);
                        break;
                    }
                    done += static_cast<std::size_t>(n);
                }
                ::close(fd);
            },
            [this, alive = alive_, error] {
                if (!*alive || !done_) return;
                if (!error->empty()) return fail(*error);
                launch();
            });
        if (!r) fail(r.error().message);
    }

    void launch() {
        const scripting::ActionDef& action = spec_.def->actions[spec_.action];
        if (!plan_.launcher) return fail("host " + plan_.host_name + ": no launcher for this kind of host");
        JobSpec job;
        job.name = spec_.execution + "/" + action.name + "/" + std::to_string(spec_.attempt);
        job.argv = std::move(plan_.argv);
        job.own_env = action.env;
        job.own_env["LUAFLOW_INPUT"] = input_file_;
        job.own_env["LUAFLOW_OUTPUT"] = output_file_;
        job.own_env["LUAFLOW_SCRATCH"] = spec_.scratch;
        job.own_env["LUAFLOW_JOB"] = job.name;
        // The devices it holds; on a host with GPUs, none ("") for a job that holds none, so that a CUDA
        // library in it does not allocate on the devices other jobs hold. Slurm picks its own.
        const std::vector<std::string>& gpus = plan_.allocation.gpus;
        if (!gpus.empty() || plan_.allocation.host_has_gpus) {
            std::string ids;
            for (const std::string& g : gpus)
                ids += (ids.empty() ? "" : ",") + g;
            job.own_env["CUDA_VISIBLE_DEVICES"] = ids;
        }
        job.env = std::move(plan_.base_env);
        for (const auto& [k, v] : job.own_env)
            job.env[k] = v;
        job.cwd = action.cwd;
        job.scratch = spec_.scratch;
        job.input_file = input_file_;
        job.output_file = output_file_;
        if (spec_.timeout) job.timeout_ms = static_cast<std::uint64_t>(*spec_.timeout);
        job.allocation = plan_.allocation;
        job.host_name = plan_.host_name;
        job.host = plan_.host;
        std::string program = job.argv.empty() ? "" : job.argv[0];
        JobCallbacks callbacks;
        callbacks.on_line = [this](loop::ChildStream stream, std::string line) {
            if (stream == loop::ChildStream::err) keep_stderr_line(stderr_tail_, line);
            sink_(spec_.execution, spec_.def->actions[spec_.action].name, spec_.attempt,
                  loop::to_string(stream), std::move(line));
        };
        callbacks.on_exit = [this](const JobExit& exit) { finished(exit); };
        auto started = plan_.launcher->start(std::move(job), std::move(callbacks));
        if (!started) return fail(started.error().message);
        job_ = std::move(*started);
    }

    void fail(std::string message, AttemptResult::Kind kind = AttemptResult::Kind::failed) {
        AttemptResult r;
        r.kind = kind;
        r.error = std::move(message);
        report(std::move(r));
    }

    void report(AttemptResult r) {
        AttemptDone done = std::move(done_);
        done_ = nullptr;
        if (done) done(std::move(r));
    }

    void finished(const JobExit& exit) {
        if (!done_) return;
        AttemptResult r;
        if (exit.signal == 0 && exit.error.empty()) r.exit_code = static_cast<int>(exit.code);
        if (!exit.error.empty()) {
            r.kind = AttemptResult::Kind::failed;
            r.error = exit.error;
            return report(std::move(r));
        }
        if (!exit.resource.empty()) {
            r.kind = AttemptResult::Kind::resource;
            r.error = exit.resource;
            return report(std::move(r));
        }
        if (exit.timed_out) {
            r.kind = AttemptResult::Kind::timed_out;
            r.error = "timed out after " + format_duration(*spec_.timeout);
            return report(std::move(r));
        }
        if (exit.signal != 0 || exit.code != 0) {
            // "exit code 1: ValueError: bad row 12" (SPEC 5): inspect, list and notifications say what
            // went wrong without a trip to the logs.
            std::vector<std::string> tail =
                exit.stderr_tail ? *exit.stderr_tail
                                 : std::vector<std::string>(stderr_tail_.begin(), stderr_tail_.end());
            r.kind = AttemptResult::Kind::failed;
            r.error = failure_message(exit.code, exit.signal, tail, redact_);
            std::uint64_t limit = plan_.allocation.memory;
            if (limit > 0 && plan_.host.kind != config::HostConfig::Kind::slurm) {
                if (auto line = out_of_memory_line(tail)) {
                    r.kind = AttemptResult::Kind::resource;
                    r.error = "exceeded its memory limit of " + format_size(limit) + " (" +
                              failure_message(exit.code, exit.signal, {}, redact_) +
                              "): " + shorten_line(redact_ ? redact_(*line) : *line, kErrorLineBytes);
                }
            }
            return report(std::move(r));
        }
        read_output(std::move(r));
    }

    // LUAFLOW_OUTPUT, read and parsed on the thread pool.
    void read_output(AttemptResult r) {
        struct Read {
            bool present = false;
            json value;
            std::string error;
        };
        auto read = std::make_shared<Read>();
        auto started = loop::run_in_pool(
            loop_,
            [read, file = output_file_] {
                std::ifstream in(file, std::ios::binary);
                if (!in) return;
                read->present = true;
                std::string text;
                char buf[65536];
                while (in.read(buf, sizeof buf) || in.gcount() > 0) {
                    text.append(buf, static_cast<std::size_t>(in.gcount()));
                    if (text.size() > kMaxOutputFile) {
                        read->error =
                            "LUAFLOW_OUTPUT (" + file + ") is larger than " + format_size(kMaxOutputFile);
                        return;
                    }
                }
                if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
                    read->present = false;
                    return;
                }
                read->value = json::parse(text, nullptr, false);
                if (read->value.is_discarded())
                    read->error = "LUAFLOW_OUTPUT (" + file + ") does not hold JSON";
            },
            [this, alive = alive_, read, r = std::move(r)]() mutable {
                if (!*alive || !done_) return;
                if (!read->error.empty()) {
                    r.kind = AttemptResult::Kind::failed;
                    r.error = read->error;
                } else {
                    r.output = read->present ? std::move(read->value) : json{{"exit_code", 0}};
                }
                report(std::move(r));
            });
        if (!started) fail(started.error().message);
    }

    uv_loop_t* loop_;
    LineSink sink_;
    LuaRunner& lua_;
    Redact redact_;
    AttemptSpec spec_;
    SubprocessPlan plan_;
    AttemptDone done_;
    std::string input_file_, output_file_;
    std::unique_ptr<Attempt> expander_;
    std::unique_ptr<Job> job_;
    std::deque<std::string> stderr_tail_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

} // namespace

std::unique_ptr<Attempt> ProcessRunner::run(AttemptSpec spec, SubprocessPlan plan, AttemptDone done) {
    return std::make_unique<ProcessAttempt>(loop_, sink_, lua_, redact_, std::move(spec), std::move(plan),
                                            std::move(done));
}

} // namespace luaflow::exec
