#pragma once
// Runs a piece of a test in a child process, for what ends the process (a fatal SQL error, an illegal
// commit): the parent checks how it ended and what it wrote to stderr.
#include <doctest/doctest.h>

#include <csignal>
#include <functional>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

namespace luaflow::testing {

struct Death {
    int status = 0;
    std::string err; // what the child wrote to stderr
};

// Runs fn in a child process (a fatal SQL error ends the process) and collects how it ended. The child
// opens its own connection: one is not to be carried across a fork.
inline Death in_child(const std::function<void()>& fn) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        std::signal(SIGABRT, SIG_DFL); // doctest's handler would report the child's abort as a crash
        ::dup2(fds[1], STDERR_FILENO);
        ::close(fds[0]);
        ::close(fds[1]);
        fn();
        _exit(0); // fn was to end the process: the parent reports this
    }
    ::close(fds[1]);
    Death d;
    char buf[4096];
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;)
        d.err.append(buf, static_cast<std::size_t>(n));
    ::close(fds[0]);
    REQUIRE(::waitpid(pid, &d.status, 0) == pid);
    return d;
}

} // namespace luaflow::testing
