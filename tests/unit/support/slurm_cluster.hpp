#pragma once
// A one-node Slurm cluster for the unit tests that need one: tests/integration/slurm_peer.py --serve
// (slurmctld and slurmd with two stand-in GPUs, PEERS.md), started on first use and stopped when the test
// program exits (the script stops the daemons by PID once its stdin closes, even if this process dies).
// SLURM_CONF is set in this process's environment, where the Slurm tools look for it.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

extern char** environ;

namespace luaflow::testing {

struct Captured {
    int status = -1; // the exit status, or -1
    std::string out;
};

// Runs argv to its end and returns its stdout (stderr is the test's). Blocking: only for a test's own
// checks while its loop is not running.
inline Captured run_capture(const std::vector<std::string>& argv) {
    Captured r;
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return r;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    std::vector<char*> args;
    for (const std::string& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = 0;
    int rc = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    char buf[4096];
    for (ssize_t n; rc == 0 && (n = ::read(fds[0], buf, sizeof buf)) > 0;)
        r.out.append(buf, static_cast<size_t>(n));
    ::close(fds[0]);
    int status = 0;
    if (rc == 0 && ::waitpid(pid, &status, 0) == pid && WIFEXITED(status)) r.status = WEXITSTATUS(status);
    return r;
}

class SlurmCluster {
  public:
    // The cluster of this test run, started by the first call.
    static SlurmCluster& get() {
        static SlurmCluster cluster;
        return cluster;
    }
    bool available() const { return !conf_.empty(); }
    // There is none because the Slurm binaries are missing: the tests skip (any other reason fails them).
    bool skipped() const { return why_not_.rfind("SKIP:", 0) == 0; }
    const std::string& why_not() const { return why_not_; }

    ~SlurmCluster() {
        if (to_child_ >= 0) ::close(to_child_);
        int status = 0;
        if (pid_ > 0) ::waitpid(pid_, &status, 0);
    }
    SlurmCluster(const SlurmCluster&) = delete;
    SlurmCluster& operator=(const SlurmCluster&) = delete;

  private:
    SlurmCluster() {
        std::string script = std::string(LUAFLOW_SOURCE_DIR) + "/tests/integration/slurm_peer.py";
        int to[2], from[2];
        if (::pipe2(to, O_CLOEXEC) != 0 || ::pipe2(from, O_CLOEXEC) != 0) {
            why_not_ = "pipe failed";
            return;
        }
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, to[0], 0);
        posix_spawn_file_actions_adddup2(&actions, from[1], 1);
        std::string python = "/usr/bin/python3", serve = "--serve";
        char* argv[] = {python.data(), script.data(), serve.data(), nullptr};
        int rc = ::posix_spawn(&pid_, python.c_str(), &actions, nullptr, argv, environ);
        posix_spawn_file_actions_destroy(&actions);
        ::close(to[0]);
        ::close(from[1]);
        to_child_ = to[1];
        if (rc != 0) {
            pid_ = 0;
            ::close(from[0]);
            why_not_ = "cannot start " + python;
            return;
        }
        FILE* in = ::fdopen(from[0], "r");
        char line[4096];
        while (std::fgets(line, sizeof line, in)) {
            std::string text(line);
            while (!text.empty() && (text.back() == '\n' || text.back() == '\r'))
                text.pop_back();
            if (text.rfind("SLURM_CONF=", 0) == 0) {
                conf_ = text.substr(11);
                ::setenv("SLURM_CONF", conf_.c_str(), 1);
                break;
            }
            if (text.rfind("SKIP:", 0) == 0) {
                why_not_ = text;
                break;
            }
        }
        std::fclose(in);
        if (conf_.empty() && why_not_.empty()) why_not_ = "slurm_peer.py did not start a cluster";
    }

    std::string conf_, why_not_;
    pid_t pid_ = 0;
    int to_child_ = -1;
};

} // namespace luaflow::testing
