#include "daemon/exec/local_launcher.hpp"

#include "common/size.hpp"
#include "loop/service_notify.hpp"

#include <csignal>
#include <cstdlib>
#include <unistd.h>

namespace luaflow::exec {

namespace {

// systemd unit names take [A-Za-z0-9:_.-]; the rest of an action's name becomes '_'.
std::string unit_part(const std::string& s) {
    std::string out;
    for (char c : s)
        out += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '_';
    return out;
}

std::optional<std::string> find_program(const std::string& name) {
    for (const char* dir : {"/usr/bin", "/bin", "/usr/local/bin"}) {
        std::string path = std::string(dir) + "/" + name;
        if (::access(path.c_str(), X_OK) == 0) return path;
    }
    return std::nullopt;
}

// The user's systemd instance, which `systemd-run --user --scope` talks to.
bool user_manager_running() {
    const char* runtime = std::getenv("XDG_RUNTIME_DIR");
    return runtime && *runtime && ::access((std::string(runtime) + "/systemd/private").c_str(), F_OK) == 0;
}

class LocalJob final : public Job {
  public:
    std::unique_ptr<loop::ChildProcess> child;
};

} // namespace

std::vector<std::string> memory_limited_argv(const std::vector<std::string>& argv, std::uint64_t memory,
                                             MemoryLimitKind kind, const std::string& unit_name, bool user) {
    std::vector<std::string> out;
    if (kind == MemoryLimitKind::systemd_scope) {
        out = {"systemd-run", "--scope", "--quiet", "--collect", "--unit=" + unit_name};
        if (user) out.push_back("--user");
        // No swap either: a job over its limit is killed, not slowed down to a crawl.
        out.insert(out.end(), {"-p", "MemoryMax=" + std::to_string(memory), "-p", "MemorySwapMax=0", "--"});
    } else {
        out = {"prlimit", "--as=" + std::to_string(memory), "--"};
    }
    out.insert(out.end(), argv.begin(), argv.end());
    return out;
}

Result<std::unique_ptr<Job>> LocalLauncher::start(JobSpec spec, JobCallbacks callbacks) {
    loop::ChildOptions options;
    options.argv = spec.argv;
    std::uint64_t memory = spec.allocation.memory;
    bool scope = false;
    if (memory > 0) {
        // A scope needs a manager that takes it: the system's for root, else the user's own (a service
        // running as User=luaflow has none unless lingering is on): otherwise prlimit.
        scope = service::systemd_booted() && find_program("systemd-run") &&
                (::geteuid() == 0 || user_manager_running());
        if (!scope && !find_program("prlimit"))
            return make_error(ErrorCode::unavailable,
                              "resources.memory needs systemd-run or prlimit (util-linux); neither is here");
        std::string unit = "luaflow-" + unit_part(spec.name) + "-" + std::to_string(++scopes_);
        options.argv = memory_limited_argv(spec.argv, memory,
                                           scope ? MemoryLimitKind::systemd_scope : MemoryLimitKind::rlimit,
                                           unit, ::geteuid() != 0);
    }
    options.env = std::move(spec.env);
    options.cwd = spec.cwd.empty() ? spec.scratch : spec.cwd;
    options.timeout_ms = spec.timeout_ms;
    options.marker = "LUAFLOW_JOB"; // what the job leaves running when it exits is ended (job.hpp)
    auto job = std::make_unique<LocalJob>();
    loop::ChildCallbacks cb;
    cb.on_line = std::move(callbacks.on_line);
    cb.on_exit = [on_exit = std::move(callbacks.on_exit), scope, memory](const loop::ChildExit& e) {
        JobExit x;
        x.code = e.code;
        x.signal = e.signal;
        x.timed_out = e.timed_out;
        // Only the kernel sends a SIGKILL that was not ours (ours come at a timeout, or after the
        // attempt stopped listening): in a scope with MemoryMax= that is the OOM killer.
        if (scope && e.signal == SIGKILL && !e.timed_out)
            x.resource = "killed for exceeding its memory limit of " + format_size(memory);
        on_exit(x);
    };
    auto child = loop::ChildProcess::spawn(loop_, std::move(options), std::move(cb));
    if (!child)
        return make_error(ErrorCode::invalid,
                          "cannot start '" + spec.argv[0] + "': " + child.error().message);
    job->child = std::move(*child);
    return std::unique_ptr<Job>(std::move(job));
}

} // namespace luaflow::exec
