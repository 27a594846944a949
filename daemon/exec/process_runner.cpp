#include "daemon/exec/process_runner.hpp"

#include "common/log.hpp"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

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

// One attempt of a `cmd` or `shell` action. It owns the child: a cancelled or destroyed attempt abandons
// it, and the child terminates its process group and lives on until libuv is done with it.
class ProcessAttempt final : public Attempt {
  public:
    ProcessAttempt(uv_loop_t* loop, LineSink sink, const AttemptSpec& spec, std::vector<std::string> argv,
                   std::map<std::string, std::string> env, AttemptDone done)
        : loop_(loop), sink_(std::move(sink)), spec_(spec), argv_(std::move(argv)), env_(std::move(env)),
          done_(std::move(done)) {}

    void start() override {
        const scripting::ActionDef& action = spec_.def->actions[spec_.action];
        std::error_code ec;
        fs::create_directories(spec_.scratch, ec);
        if (ec) return fail("cannot create scratch directory " + spec_.scratch + ": " + ec.message());
        std::string io_dir = spec_.scratch + "/.luaflow";
        fs::create_directories(io_dir, ec);
        std::string input_file = io_dir + "/input.json";
        output_file_ = io_dir + "/output.json";
        fs::remove(output_file_, ec);
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
        loop::ChildOptions options;
        options.argv = argv_;
        options.env = env_;
        for (const auto& [k, v] : action.env)
            options.env[k] = v;
        options.env["LUAFLOW_INPUT"] = input_file;
        options.env["LUAFLOW_OUTPUT"] = output_file_;
        options.env["LUAFLOW_SCRATCH"] = spec_.scratch;
        options.cwd = action.cwd.empty() ? spec_.scratch : action.cwd;
        if (spec_.timeout) options.timeout_ms = static_cast<std::uint64_t>(*spec_.timeout);
        loop::ChildCallbacks callbacks;
        callbacks.on_line = [this](loop::ChildStream stream, std::string line) {
            sink_(spec_.execution, spec_.def->actions[spec_.action].name, spec_.attempt,
                  loop::to_string(stream), std::move(line));
        };
        callbacks.on_exit = [this](const loop::ChildExit& exit) { finished(exit); };
        auto child = loop::ChildProcess::spawn(loop_, std::move(options), std::move(callbacks));
        if (!child) return fail("cannot start '" + argv_[0] + "': " + child.error().message);
        child_ = std::move(*child);
    }

    // No report after this; the process group gets SIGTERM, then SIGKILL.
    void cancel() override {
        done_ = nullptr;
        child_.reset();
    }

  private:
    void fail(std::string message) {
        AttemptResult r;
        r.kind = AttemptResult::Kind::failed;
        r.error = std::move(message);
        report(std::move(r));
    }

    void report(AttemptResult r) {
        AttemptDone done = std::move(done_);
        done_ = nullptr;
        if (done) done(std::move(r));
    }

    void finished(const loop::ChildExit& exit) { report(result(exit)); }

    AttemptResult result(const loop::ChildExit& exit) {
        AttemptResult r;
        if (exit.signal == 0) r.exit_code = static_cast<int>(exit.code);
        if (exit.timed_out) {
            r.kind = AttemptResult::Kind::timed_out;
            r.error = "timed out after " + format_duration(*spec_.timeout);
            return r;
        }
        if (exit.signal != 0) {
            r.kind = AttemptResult::Kind::failed;
            r.error = std::string("killed by signal ") + strsignal(exit.signal);
            return r;
        }
        if (exit.code != 0) {
            r.kind = AttemptResult::Kind::failed;
            r.error = "exit code " + std::to_string(exit.code);
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

    uv_loop_t* loop_;
    LineSink sink_;
    AttemptSpec spec_;
    std::vector<std::string> argv_;
    std::map<std::string, std::string> env_;
    AttemptDone done_;
    std::string output_file_;
    std::unique_ptr<loop::ChildProcess> child_;
};

} // namespace

ProcessRunner::ProcessRunner(uv_loop_t* loop, LineSink sink, std::map<std::string, std::string> base_env)
    : loop_(loop), sink_(std::move(sink)), base_env_(std::move(base_env)) {}

std::unique_ptr<Attempt> ProcessRunner::run(const AttemptSpec& spec, std::vector<std::string> argv,
                                            AttemptDone done) {
    return std::make_unique<ProcessAttempt>(loop_, sink_, spec, std::move(argv), base_env_, std::move(done));
}

} // namespace luaflow::exec
