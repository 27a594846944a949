#include "daemon/app.hpp"

#include "common/log.hpp"
#include "common/loop_thread.hpp"
#include "daemon/control/handlers.hpp"
#include "daemon/control/socket_server.hpp"
#include "daemon/engine.hpp"
#include "daemon/exec/executor.hpp"
#include "daemon/exec/leftovers.hpp"
#include "daemon/http/api_server.hpp"
#include "daemon/offline.hpp"
#include "daemon/registry/registry.hpp"
#include "daemon/registry/workflow_files.hpp"
#include "daemon/schedule/scheduler.hpp"
#include "daemon/store/checkpointer.hpp"
#include "daemon/store/db.hpp"
#include "daemon/store/disk_space.hpp"
#include "daemon/store/executions.hpp"
#include "daemon/store/retention_pruner.hpp"
#include "daemon/triggers/file_watches.hpp"
#include "loop/journal.hpp"
#include "loop/service_notify.hpp"
#include "loop/uv_handle.hpp"
#include "version.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <functional>
#include <malloc.h>
#include <map>
#include <memory>
#include <set>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace luaflow {

namespace {

// Processes that jobs of an earlier run left running end before anything starts: those of the attempts
// it was running (a crash, kill -9: the attempts are retried or fail), and what a finished job left behind
// (`setsid sleep 1000 &`). Only jobs of this store's executions: another luaflowd's are not ours. Until
// then luaflowd neither listens nor starts anything (luaflowd(8), RESTARTS). The /proc scan blocks, but
// nothing is served yet.
void end_leftover_jobs(uv_loop_t* loop, store::Db& db) {
    std::map<std::string, bool> ours; // execution id: in this store
    std::vector<exec::Leftover> left = exec::find_leftovers([&](const std::string& execution) {
        auto [at, fresh] = ours.try_emplace(execution, false);
        if (fresh) at->second = store::find_execution(db, execution).has_value();
        return at->second;
    });
    if (left.empty()) return;
    log::warn("%zu process(es) of earlier jobs are still running: ending them first", left.size());
    bool done = false;
    exec::end_leftovers(loop, std::move(left), loop::kKillAfterMs, [&] {
        done = true;
        uv_stop(loop);
    });
    while (!done)
        uv_run(loop, UV_RUN_DEFAULT);
}

// A signal watched on the loop; a failure to watch it is said, and the daemon runs on without it.
std::unique_ptr<loop::Signal> watch_signal(uv_loop_t* loop, int signum, std::function<void()> fn) {
    auto watched = std::make_unique<loop::Signal>(loop);
    if (int rc = watched->start(signum, std::move(fn)); rc != 0)
        log::error("cannot watch signal %s: %s", sigabbrev_np(signum), uv_strerror(rc));
    return watched;
}

// How long a start waits for a lock whose holder is not a running luaflowd: the one just killed (kill -9)
// releases it only once its last thread has exited, and a process it was starting holds a copy until
// its exec (issue 14, item 17: a restart straight after a kill -9 failed now and then).
constexpr int kLockWaitMs = 10'000;
constexpr int kLockPollMs = 20;

// The pid the lock file names (the luaflowd that took it), or 0.
pid_t lock_owner(int fd) {
    char buf[32] = {};
    ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    return n > 0 ? static_cast<pid_t>(std::atol(buf)) : 0;
}

// `pid` runs and is not on its way out: not gone, not a zombie, not exiting (PF_EXITING, 0x4, in the
// flags of /proc/PID/stat).
bool running_process(pid_t pid) {
    if (pid <= 0) return false;
    int fd = ::open(("/proc/" + std::to_string(pid) + "/stat").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    char buf[1024] = {};
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    const char* close = n > 0 ? std::strrchr(buf, ')') : nullptr;
    if (!close) return false;
    char state = 0;
    long ppid = 0, pgrp = 0, session = 0, tty = 0, tpgid = 0;
    unsigned long flags = 0;
    if (std::sscanf(close + 1, " %c %ld %ld %ld %ld %ld %lu", &state, &ppid, &pgrp, &session, &tty, &tpgid,
                    &flags) != 7)
        return false;
    return state != 'Z' && state != 'X' && (flags & 0x4) == 0;
}

// One daemon per state directory: the lock lives as long as the process, and its file names the pid.
Result<int> lock_state_dir(const std::string& state) {
    std::string path = state + "/luaflowd.lock";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return make_error(ErrorCode::unavailable, "cannot open " + path + ": " + std::strerror(errno));
    bool waited = false;
    for (int waited_ms = 0; ::flock(fd, LOCK_EX | LOCK_NB) != 0; waited_ms += kLockPollMs) {
        pid_t owner = lock_owner(fd);
        // A luaflowd that runs: refused at once. Anything else lets go of the lock soon.
        if (running_process(owner) || waited_ms >= kLockWaitMs) {
            ::close(fd);
            std::string who = owner > 0 ? " (pid " + std::to_string(owner) + ")" : "";
            return make_error(
                ErrorCode::conflict,
                "another luaflowd" + who + " uses the state directory " + state +
                    (waited ? " (waited " + std::to_string(kLockWaitMs / 1000) + " s for it to let go)"
                            : ""));
        }
        if (!waited)
            log::info("waiting for the luaflowd that ran before (pid %d) to let go of %s", owner,
                      path.c_str());
        waited = true;
        ::usleep(kLockPollMs * 1000); // at start, before the loop runs: nothing else waits on it
    }
    std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) != 0 ||
        ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size()))
        log::warn("cannot write the pid to %s: %s", path.c_str(), std::strerror(errno));
    return fd;
}

} // namespace

Result<config::Config> effective_config(const Options& options) {
    std::string file = options.config_file.empty() ? config::kDefaultConfigFile : options.config_file;
    auto cfg = config::load_config(file, options.start_dir);
    if (!cfg) return cfg;
    if (options.workflows) cfg->workflows = *options.workflows;
    if (options.state) cfg->state = *options.state;
    if (options.socket) cfg->socket.path = *options.socket;
    if (options.http) cfg->http.listen = *options.http;
    return cfg;
}

int check_all(const Options& options) {
    auto cfg = effective_config(options);
    if (!cfg) {
        std::fprintf(stdout, "%s\n", cfg.error().message.c_str());
        return 1;
    }
    int problems = 0;
    std::vector<std::string> files;
    if (auto scanned = registry::workflow_files(cfg->workflows)) {
        for (const registry::WorkflowFile& f : scanned.value())
            files.push_back(f.path);
    } else {
        std::printf("%s: %s\n", cfg->workflows.c_str(), scanned.error().message.c_str());
        ++problems;
    }
    // The same loads as luaflowctl validate, with the daemon's config.
    for (const scripting::LoadError& e : offline::load_errors(files, &cfg.value())) {
        std::printf("%s\n", e.to_string().c_str());
        ++problems;
    }
    if (problems == 0) std::printf("%zu workflow(s) ok\n", files.size());
    return problems == 0 ? 0 : 1;
}

namespace {

// Creates the state directory (0700 by the umask) or, when it is there already, makes the daemon's own
// files in it private: a state written by an older luaflowd (0644 files) is not left readable. The
// directory itself keeps its mode, since it may be shared; a warning says when others can read it.
Result<void> make_private_state_dir(const std::string& dir) {
    std::error_code ec;
    if (std::filesystem::create_directories(dir, ec)) return {};
    if (ec)
        return make_error(ErrorCode::unavailable,
                          "cannot create state directory " + dir + ": " + ec.message());
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0 && (st.st_mode & 0077) != 0)
        log::warn("state directory %s can be read by other users (mode %04o); luaflowd's own files in it are "
                  "made private",
                  dir.c_str(), static_cast<unsigned>(st.st_mode & 07777));
    for (const char* name : {"/luaflow.db", "/luaflow.db-wal", "/luaflow.db-shm", "/scratch"}) {
        std::string path = dir + name;
        if (::stat(path.c_str(), &st) != 0 || (st.st_mode & 0077) == 0) continue;
        mode_t mode = S_ISDIR(st.st_mode) ? 0700 : 0600;
        if (::chmod(path.c_str(), mode) == 0)
            log::info("%s: made private (mode %04o, was %04o)", path.c_str(), static_cast<unsigned>(mode),
                      static_cast<unsigned>(st.st_mode & 07777));
    }
    return {};
}

} // namespace

int run_daemon(const Options& options, std::int64_t started_ns) {
    std::signal(SIGPIPE, SIG_IGN);
    journal::start(); // under systemd: lines with LUAFLOW_WORKFLOW= and the like
    auto cfg_result = effective_config(options);
    if (!cfg_result) {
        log::error("%s", cfg_result.error().message.c_str());
        return 1;
    }
    config::Config cfg = std::move(cfg_result.value());
    // Every input, output and log line is in the state directory: what the daemon creates is its user's
    // alone (0700 directories, 0600 files), whoever starts it. Its programs inherit this umask.
    ::umask(0077);
    if (auto r = make_private_state_dir(cfg.state); !r) {
        log::error("%s", r.error().message.c_str());
        return 1;
    }
    auto lock = lock_state_dir(cfg.state);
    if (!lock) {
        log::error("%s", lock.error().message.c_str());
        return 1;
    }
    auto db_result = store::Db::open(cfg.state + "/luaflow.db", cfg.durability == config::Durability::power
                                                                    ? store::Db::Synchronous::full
                                                                    : store::Db::Synchronous::normal);
    if (!db_result) {
        log::error("%s", db_result.error().message.c_str());
        return 1;
    }
    std::unique_ptr<store::Db> db = std::move(db_result.value());

    uv_loop_t loop;
    uv_loop_init(&loop);
    mark_loop_thread();
    std::uint64_t started = uv_hrtime();
    int exit_code = 0;
    {
        store::Checkpointer checkpointer(&loop, *db, cfg.state + "/luaflow.db");
        store::Reader reader(&loop, cfg.state + "/luaflow.db");
        store::DiskSpace disk(&loop, *db, cfg.state);
        disk.start();
        Engine engine(&loop, *db, cfg);
        registry::Registry& registry = engine.registry;
        exec::Executor& executor = engine.executor;

        // Every path is absolute by now (SPEC 1: resolved once, at start); say which ones are in use.
        std::string config_file =
            options.config_file.empty() ? config::kDefaultConfigFile : options.config_file;
        log::info("config %s%s, state directory %s", config_file.c_str(),
                  cfg.file.empty() ? " (not there: defaults)" : "", cfg.state.c_str());
        // The directory is read on the thread pool, as every later look at it; the loop turns meanwhile.
        registry::ReloadReport first = registry::first_load(registry, &loop);
        log::info("luaflowd %s: %d workflow(s) loaded from %s, %zu with errors", kVersion, first.workflows,
                  cfg.workflows.c_str(), first.errors.size());
        // Loading freed much more than it kept; give it back to the system (idle RSS with many workflows).
        ::malloc_trim(0);
        registry.watch();
        end_leftover_jobs(&loop, *db);
        executor.recover();
        // What the store holds pending goes out now; what recovery wrote, after its commit.
        engine.outbox.start();
        // After recovery, so that catch-up runs queue behind the executions the store already holds.
        schedule::Scheduler scheduler(&loop, *db, registry, executor, {}, started_ns);
        triggers::FileWatches file_watches(&loop, *db, registry, executor);
        registry.on_change = [&scheduler, &file_watches](const std::vector<std::string>& changed) {
            for (const auto& id : changed) {
                scheduler.refresh(id);
                file_watches.refresh(id);
            }
        };
        scheduler.start();
        file_watches.start();
        db->flush();
        store::RetentionPruner pruner(&loop, *db, cfg.state + "/scratch",
                                      [&checkpointer] { return checkpointer.busy(); });
        pruner.configure(cfg.retention.days, cfg.retention.keep_per_workflow);
        pruner.start();

        std::unique_ptr<http::ApiServer> api; // started below, once the socket listens
        auto reload = [&](registry::Registry::ReloadDone done) {
            service::notify("RELOADING=1");
            std::string file = options.config_file.empty() ? config::kDefaultConfigFile : options.config_file;
            if (auto fresh = effective_config(options)) {
                if (fresh->state != cfg.state || fresh->socket.path != cfg.socket.path ||
                    fresh->workflows != cfg.workflows)
                    log::warn("%s: changes of state, socket or workflows take effect at the next start",
                              file.c_str());
                fresh->state = cfg.state;
                fresh->socket = cfg.socket;
                fresh->workflows = cfg.workflows;
                cfg = std::move(fresh.value());
                executor.apply_config(cfg);
                engine.outbox.apply_config();
                pruner.configure(cfg.retention.days, cfg.retention.keep_per_workflow);
                if (api) api->reload(cfg);
            } else {
                log::error("config not reloaded: %s", fresh.error().message.c_str());
            }
            registry.reload(true, [done = std::move(done)](const registry::ReloadReport& r) {
                log::info("reloaded: %d workflow(s), %zu with errors", r.workflows, r.errors.size());
                service::notify("READY=1");
                if (done) done(r);
            });
        };

        control::Context ctx{&loop,     *db,           reader,  registry, executor,
                             scheduler, engine.outbox, started, reload};
        control::SocketServer server(&loop, control::make_handler(ctx));
        if (auto r = server.listen(cfg.socket.path, cfg.socket.mode, cfg.socket.group); !r) {
            log::error("%s", r.error().message.c_str());
            return 1;
        }
        log::info("listening on %s", cfg.socket.path.c_str());
        if (!cfg.http.listen.empty()) {
            auto started_api = http::ApiServer::start(&loop, cfg, ctx);
            if (!started_api) {
                log::error("%s", started_api.error().message.c_str());
                server.close();
                return 1;
            }
            api = std::move(started_api.value());
            log::info("HTTP API on %s (port %d)", cfg.http.listen.c_str(), api->port());
        }

        bool stopping = false;
        auto stop = [&] {
            if (stopping) return;
            stopping = true;
            service::notify("STOPPING=1");
            log::info("stopping: running actions get %s to finish",
                      format_duration(cfg.shutdown_grace).c_str());
            server.close();
            if (api) api->close();
            scheduler.stop();
            file_watches.stop();
            executor.shutdown(cfg.shutdown_grace, [&] { uv_stop(&loop); });
        };
        auto sighup = watch_signal(&loop, SIGHUP, [&] { reload(nullptr); });
        auto sigterm = watch_signal(&loop, SIGTERM, stop);
        auto sigint = watch_signal(&loop, SIGINT, stop);

        std::unique_ptr<loop::Timer> watchdog;
        if (std::uint64_t usec = service::watchdog_usec()) {
            watchdog = std::make_unique<loop::Timer>(&loop);
            watchdog->start(
                usec / 2000, [] { service::notify("WATCHDOG=1"); }, usec / 2000);
            watchdog->unref();
        }
        service::notify("READY=1");
        // Keeps the loop running until stop() even when nothing else is active.
        loop::Timer keepalive(&loop);
        keepalive.start(
            3'600'000, [] {}, 3'600'000);
        uv_run(&loop, UV_RUN_DEFAULT);
        db->flush();
        log::info("stopped");
    }
    // Closing the parts queued close callbacks; children being killed still hold handles until they exit.
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    ::close(lock.value());
    return exit_code;
}

} // namespace luaflow
