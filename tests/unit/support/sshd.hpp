#pragma once
// A real OpenSSH server on 127.0.0.1 and a free port, in a temp directory with its own host key and a
// client key it accepts (/work/shared/PEERS.md), for the current user. Stopped by its PID at the end.
// available() is false when /usr/sbin/sshd (or $LUAFLOW_TEST_SSHD, to try that case) is not there: the
// test then calls missing_peer() (peers.hpp) and returns.
#include "daemon/config/config.hpp"
#include "tests/unit/support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <netinet/in.h>
#include <pwd.h>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace luaflow::testing {

class Sshd {
  public:
    static std::string program() {
        const char* p = std::getenv("LUAFLOW_TEST_SSHD");
        return p && *p ? p : "/usr/sbin/sshd";
    }

    Sshd() {
        if (!available()) return;
        port_ = free_port();
        REQUIRE(port_ > 0);
        std::string d = dir_.path();
        REQUIRE(std::system(("ssh-keygen -q -t ed25519 -N '' -f " + d +
                             "/hostkey && ssh-keygen -q -t ed25519 "
                             "-N '' -f " +
                             d + "/clientkey && cp " + d + "/clientkey.pub " + d + "/authorized_keys")
                                .c_str()) == 0);
        std::filesystem::create_directories("/run/sshd"); // privilege separation needs it
        std::ofstream(d + "/sshd_config") << "Port " << port_ << "\nListenAddress 127.0.0.1\nHostKey " << d
                                          << "/hostkey\nAuthorizedKeysFile " << d
                                          << "/authorized_keys\nPasswordAuthentication no\n"
                                             "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
                                             "PidFile "
                                          << d << "/sshd.pid\n";
        std::string config = d + "/sshd_config", log = d + "/sshd.log", sshd = program();
        const char* argv[] = {sshd.c_str(), "-D", "-f", config.c_str(), "-E", log.c_str(), nullptr};
        // fork and exec, not posix_spawn: glibc's posix_spawn leaves its internal signals 32 and 33
        // ignored in the child, and sshd would pass that on to the remote programs.
        pid_ = ::fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            // Default dispositions and no blocked signal, as init would start it: the test ignores SIGPIPE.
            for (int sig = 1; sig < NSIG; ++sig)
                std::signal(sig, SIG_DFL);
            sigset_t none;
            sigemptyset(&none);
            sigprocmask(SIG_SETMASK, &none, nullptr);
            ::execv(sshd.c_str(), const_cast<char**>(argv));
            ::_exit(127);
        }
        REQUIRE_MESSAGE(wait_listening(), "sshd did not start listening; see " << log);
    }
    ~Sshd() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGTERM);
        ::waitpid(pid_, nullptr, 0);
    }
    Sshd(const Sshd&) = delete;
    Sshd& operator=(const Sshd&) = delete;

    static bool available() { return ::access(program().c_str(), X_OK) == 0; }
    int port() const { return port_; }
    std::string identity() const { return dir_.file("clientkey"); }
    static std::string user() {
        const passwd* pw = ::getpwuid(::geteuid());
        return pw ? pw->pw_name : "root";
    }
    // A host that reaches this server.
    config::HostConfig host() const {
        config::HostConfig h;
        h.kind = config::HostConfig::Kind::ssh;
        h.ssh.target = user() + "@127.0.0.1";
        h.ssh.port = port_;
        h.ssh.identity = identity();
        h.ssh.options = {"StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null"};
        return h;
    }

  private:
    static int free_port() {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        int port = 0;
        if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
            port = ntohs(a.sin_port);
        ::close(fd);
        return port;
    }

    bool wait_listening() const {
        for (int i = 0; i < 500; ++i) { // 5 s
            int fd = ::socket(AF_INET, SOCK_STREAM, 0);
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            a.sin_port = htons(static_cast<std::uint16_t>(port_));
            bool up = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
            ::close(fd);
            if (up) return true;
            if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return false; // it exited
            struct timespec ts {
                0, 10'000'000
            };
            ::nanosleep(&ts, nullptr); // polling a condition with a deadline
        }
        return false;
    }

    TempDir dir_;
    int port_ = 0;
    pid_t pid_ = 0;
};

} // namespace luaflow::testing
