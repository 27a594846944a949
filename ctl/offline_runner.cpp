#include "ctl/offline_runner.hpp"

#include "ctl/commands/commands.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace luaflow::ctl {

namespace fs = std::filesystem;

std::string luaflowd_path() {
    if (const char* env = std::getenv("LUAFLOWD"); env && *env) return env;
    std::error_code ec;
    fs::path self = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        for (const fs::path& candidate :
             {self.parent_path() / "luaflowd", self.parent_path() / "../sbin/luaflowd"})
            if (::access(candidate.c_str(), X_OK) == 0) return candidate.lexically_normal().string();
    }
    return LUAFLOW_SBINDIR "/luaflowd";
}

std::optional<nlohmann::json> run_offline(const nlohmann::json& request, int& rc) {
    std::string daemon = luaflowd_path();
    std::vector<std::string> argv_strings = {daemon, "--offline"};
    std::vector<char*> argv;
    for (std::string& a : argv_strings)
        argv.push_back(a.data());
    argv.push_back(nullptr);

    int out[2], in[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(in, O_CLOEXEC) != 0) {
        std::fprintf(stderr, "luaflowctl: pipe: %s\n", std::strerror(errno));
        rc = kFailed;
        return std::nullopt;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
    pid_t pid = 0;
    int err = posix_spawn(&pid, daemon.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    ::close(in[0]);
    if (err != 0) {
        ::close(out[0]);
        ::close(in[1]);
        std::fprintf(stderr, "luaflowctl: cannot run %s (validate and test run the loader there): %s\n",
                     daemon.c_str(), std::strerror(err));
        rc = kFailed;
        return std::nullopt;
    }
    // It reads the whole request before it writes anything: no deadlock however large the request. A
    // luaflowd that died early must give its exit status below, not kill us with SIGPIPE.
    ::signal(SIGPIPE, SIG_IGN);
    std::string sent = request.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    for (std::size_t off = 0; off < sent.size();) {
        ssize_t n = ::write(in[1], sent.data() + off, sent.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break; // it has gone: its exit status says why
        off += static_cast<std::size_t>(n);
    }
    ::close(in[1]);
    std::string text;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(out[0], buf, sizeof buf);
        if (n > 0) {
            text.append(buf, static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        break;
    }
    ::close(out[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::fprintf(stderr, "luaflowctl: %s --offline %s\n", daemon.c_str(),
                     WIFEXITED(status)
                         ? ("exited with " + std::to_string(WEXITSTATUS(status))).c_str()
                         : ("was killed by signal " + std::to_string(WTERMSIG(status))).c_str());
        rc = WIFEXITED(status) && WEXITSTATUS(status) == kUsage ? kUsage : kFailed;
        return std::nullopt;
    }
    nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
        std::fprintf(stderr, "luaflowctl: %s --offline printed no JSON document\n", daemon.c_str());
        rc = kFailed;
        return std::nullopt;
    }
    return doc;
}

} // namespace luaflow::ctl
