// exec::SshLauncher against a real sshd on 127.0.0.1 (tests/unit/support/sshd.hpp), on a real loop:
// the input and output files across, the remote environment and cwd, output lines in order, exit codes
// and signals, argv quoting, the timeout and a destroyed job reaching the remote process group, ssh's
// own failures as errors, and a local ssh killed with SIGKILL (a crashed daemon) still stopping the
// remote group. Remote and local are the same machine here, so the test sees the remote processes.
#include "daemon/exec/ssh_launcher.hpp"
#include "loop/uv_handle.hpp"
#include "tests/unit/support/local_socket.hpp"
#include "tests/unit/support/peers.hpp"
#include "tests/unit/support/sshd.hpp"
#include "tests/unit/support/temp_dir.hpp"
#include "tests/unit/support/test_loop.hpp"

#include <doctest/doctest.h>

#include <cerrno>
#include <csignal>
#include <dirent.h>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

using namespace luaflow;
using exec::JobExit;
using loop::ChildStream;

namespace {

namespace fs = std::filesystem;

using testing::Loop;

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

using testing::process_gone;

template <class F> bool soon(F cond, std::uint64_t ms = 8000) {
    std::uint64_t end = uv_hrtime() + ms * 1'000'000;
    while (!cond()) {
        if (uv_hrtime() > end) return false;
        struct timespec ts {
            0, 20'000'000
        };
        ::nanosleep(&ts, nullptr); // polling a condition with a deadline
    }
    return true;
}

// The processes whose environment holds LUAFLOW_JOB=name (what the daemon's restart reaper looks for).
std::vector<int> processes_of_job(const std::string& name) {
    std::vector<int> pids;
    std::string wanted = "LUAFLOW_JOB=" + name;
    DIR* proc = ::opendir("/proc");
    while (dirent* e = proc ? ::readdir(proc) : nullptr) {
        int pid = std::atoi(e->d_name);
        if (pid <= 0) continue;
        std::string env = read_file("/proc/" + std::to_string(pid) + "/environ");
        std::stringstream vars(env);
        for (std::string var; std::getline(vars, var, '\0');)
            if (var == wanted) pids.push_back(pid);
    }
    if (proc) ::closedir(proc);
    return pids;
}

double seconds_between(std::uint64_t from_ns, std::uint64_t to_ns) {
    return static_cast<double>(to_ns - from_ns) / 1e9;
}

// One job and what it delivered.
struct Run {
    testing::TempDir dir;
    exec::JobSpec spec;
    std::vector<std::pair<ChildStream, std::string>> lines;
    std::optional<JobExit> exit;
    std::uint64_t exit_ns = 0;
    std::unique_ptr<exec::Job> job;

    Run(const testing::Sshd& sshd, std::vector<std::string> argv) {
        // Unique across the test processes ctest runs side by side: a test that finds its job's processes
        // by the marker (the crashed-daemon case) must not find, and kill, another test's.
        static int count = 0;
        spec.name = "ssh-test-" + std::to_string(::getpid()) + "/action/" + std::to_string(++count);
        spec.argv = std::move(argv);
        spec.scratch = dir.path();
        spec.input_file = dir.file("input.json");
        spec.output_file = dir.file("output.json");
        spec.own_env = {{"LUAFLOW_INPUT", spec.input_file},
                        {"LUAFLOW_OUTPUT", spec.output_file},
                        {"LUAFLOW_SCRATCH", spec.scratch},
                        {"LUAFLOW_JOB", spec.name}};
        const char* path = std::getenv("PATH");
        spec.env = spec.own_env;
        spec.env["PATH"] = path ? path : "/usr/bin:/bin";
        spec.host_name = "box";
        spec.host = sshd.host();
        std::ofstream(spec.input_file) << R"({"input":{"n":1}})";
    }

    exec::JobCallbacks callbacks() {
        exec::JobCallbacks c;
        c.on_line = [this](ChildStream s, std::string line) { lines.emplace_back(s, std::move(line)); };
        c.on_exit = [this](const JobExit& e) {
            CHECK_FALSE(exit.has_value()); // once
            exit = e;
            exit_ns = uv_hrtime();
        };
        return c;
    }

    void start(exec::SshLauncher& launcher) {
        auto started = launcher.start(spec, callbacks());
        REQUIRE_MESSAGE(started, (started ? "" : started.error().message));
        job = std::move(*started);
    }

    std::vector<std::string> lines_of(ChildStream s) const {
        std::vector<std::string> v;
        for (const auto& [stream, line] : lines)
            if (stream == s) v.push_back(line);
        return v;
    }
    std::string err_text() const {
        std::string s;
        for (const std::string& l : lines_of(ChildStream::err))
            s += l + "\n";
        return s;
    }
};

#define SSHD_OR_SKIP(name)                                                                                   \
    if (!testing::Sshd::available()) {                                                                       \
        testing::missing_peer(testing::Sshd::program() + " is not installed (package openssh-server)");      \
        return;                                                                                              \
    }                                                                                                        \
    testing::Sshd name

} // namespace

TEST_CASE("ssh launcher: the input file goes over, the output file comes back, the job dir goes") {
    SSHD_OR_SKIP(sshd);
    Loop l;
    testing::TempDir state;
    exec::SshLauncher launcher(&l.uv, state.file("ssh"));
    // An input with what could upset a transfer: ssh's escape "~." after a newline, a NUL, no newline.
    std::string input = std::string("{\"a\":\"x\ny\"}\n~.\n") + std::string(1, '\0') + "\xff end";
    Run with(sshd, {"sh", "-c",
                    "echo \"$LUAFLOW_SCRATCH\"; cat \"$LUAFLOW_INPUT\" >\"$LUAFLOW_OUTPUT\"; printf '+' "
                    ">>\"$LUAFLOW_OUTPUT\""});
    std::ofstream(with.spec.input_file, std::ios::binary | std::ios::trunc) << input;
    // A stale local output file must not survive a job that writes none.
    Run without(sshd, {"true"});
    std::ofstream(without.spec.output_file) << "stale";
    with.start(launcher);
    without.start(launcher);
    REQUIRE(l.run_until([&] { return with.exit && without.exit; }));
    CHECK(with.exit->error == "");
    CHECK(with.exit->code == 0);
    CHECK(read_file(with.spec.output_file) == input + "+");
    CHECK(without.exit->error == "");
    CHECK_FALSE(fs::exists(without.spec.output_file));
    auto out = with.lines_of(ChildStream::out);
    REQUIRE(out.size() == 1);
    std::string remote_dir = out[0];
    CHECK(remote_dir.find("luaflow") != std::string::npos);
    CHECK(remote_dir != with.spec.scratch);
    CHECK_FALSE(fs::exists(remote_dir)); // removed before the exit was reported
    CHECK(with.lines_of(ChildStream::err).empty());
}

TEST_CASE("ssh launcher: the remote gets own_env with remote paths, keeps its PATH, and the memory limit") {
    SSHD_OR_SKIP(sshd);
    Loop l;
    exec::SshLauncher launcher(&l.uv, "");
    Run r(sshd,
          {"sh", "-c",
           "echo \"$FOO\"; echo \"${LOCAL_ONLY-unset}\"; echo \"$PATH\"; echo \"$CUDA_VISIBLE_DEVICES\"; "
           "case \"$LUAFLOW_INPUT\" in \"$LUAFLOW_SCRATCH\"/*) echo in-scratch;; esac; "
           "case \"$LUAFLOW_OUTPUT\" in \"$LUAFLOW_SCRATCH\"/*) echo in-scratch;; esac; "
           "cat \"$LUAFLOW_INPUT\"; echo; echo \"$LUAFLOW_JOB\"; ulimit -v; pwd; "
           "grep SigIgn /proc/self/status"});
    r.spec.own_env["FOO"] = "a 'b' $c";
    r.spec.own_env["CUDA_VISIBLE_DEVICES"] = "0,1";
    r.spec.env["LOCAL_ONLY"] = "x";
    r.spec.env["PATH"] += ":/luaflow-local-only";
    r.spec.allocation.memory = 256u << 20;
    r.start(launcher);
    REQUIRE(l.run_until([&] { return r.exit.has_value(); }));
    CHECK(r.exit->error == "");
    auto out = r.lines_of(ChildStream::out);
    REQUIRE_MESSAGE(out.size() == 11, r.err_text());
    CHECK(out[0] == "a 'b' $c");
    CHECK(out[1] == "unset");
    CHECK(out[2].find("/luaflow-local-only") == std::string::npos);
    CHECK(out[2].find("/bin") != std::string::npos);
    CHECK(out[3] == "0,1");
    CHECK(out[4] == "in-scratch");
    CHECK(out[5] == "in-scratch");
    CHECK(out[6] == R"({"input":{"n":1}})");
    CHECK(out[7] == r.spec.name);
    CHECK(out[8] == "262144");
    CHECK(out[9].find("luaflow") != std::string::npos); // the remote job directory
    CHECK(out[10] == "SigIgn:\t0000000000000000");      // the program's signals are its own, as locally
}

TEST_CASE("ssh launcher: cwd is the action's when set") {
    SSHD_OR_SKIP(sshd);
    Loop l;
    exec::SshLauncher launcher(&l.uv, "");
    testing::TempDir work;
    fs::create_directories(work.file("with space"));
    Run r(sshd, {"pwd"});
    r.spec.cwd = work.file("with space");
    r.start(launcher);
    REQUIRE(l.run_until([&] { return r.exit.has_value(); }));
    CHECK(r.exit->error == "");
    CHECK(r.lines_of(ChildStream::out) == std::vector<std::string>{fs::canonical(r.spec.cwd).string()});
}

TEST_CASE("ssh launcher: stdout and stderr lines come in order, a last line without newline too") {
    SSHD_OR_SKIP(sshd);
    Loop l;
    exec::SshLauncher launcher(&l.uv, "");
    Run r(sshd, {"sh", "-c",
                 "i=0; while [ $i -lt 1000 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done; "
                 "printf 'crlf\\r\\n'; printf last"});
    r.start(launcher);
    REQUIRE(l.run_until([&] { return r.exit.has_value(); }));
    CHECK(r.exit->error == "");
    std::vector<std::string> out, err;
    for (int i = 0; i < 1000; ++i) {
        out.push_back("out" + std::to_string(i));
        err.push_back("err" + std::to_string(i));
    }
    out.push_back("crlf");
    out.push_back("last");
    CHECK(r.lines_of(ChildStream::out) == out);
    CHECK(r.lines_of(ChildStream::err) == err);
}

TEST_CASE("ssh launcher: lines stream while the program runs") {
    SSHD_OR_SKIP(sshd);
    Loop l;
    exec::SshLauncher launcher(&l.uv, "");
    Run r(sshd, {"sh", "-c", "echo first; sleep 2; echo second"});
    r.start(launcher);
    REQUIRE(l.run_until([&] { return !r.lines.empty(); }));
    CHECK_FALSE(r.exit);
    REQUIRE(l.run_until([&] { return r.exit.has_value(); }));
    CHECK(r.lines_of(ChildStream::out) == std::vector<std::string>{"first", "second"});
}

TEST_CASE("ssh launcher: the remote exit code and a remote signal death") {
    SSHD_OR_SKIP(sshd);
    Loop l;
    exec::SshLauncher launcher(&l.uv, "");
    Run code(sshd, {"sh", "-c", "echo '{\"partial\":1}' >\"$LUAFLOW_OUTPUT\"; exit 3"});
    Run signal(sshd, {"sh", "-c", "kill -USR1 $$"});
    Run high(sshd, {"sh", "-c", "exit 255"});
    code.start(launcher);
    signal.start(launcher);
    high.start(launcher);
    REQUIRE(l.run_until([&] { return code.exit && signal.exit && high.exit; }));
    CHECK(code.exit->error == "");
    CHECK(code.exit->code == 3);
    CHECK(code.exit->signal == 0);
    CHECK(read_file(code.spec.output_file) == "{\"partial\":1}\n");
    CHECK(signal.exit->error == "");
    CHECK(signal.exit->signal == SIGUSR1);
    CHECK_FALSE(signal.exit->timed_out);
    CHECK(high.exit->error == ""); // not mistaken for ssh's own 255
    CHECK(high.exit->code == 255);
}

TEST_CASE("ssh launcher: argv reaches the remote program word for word") {
    SSHD_OR_SKIP(sshd);
    Loop l;
    exec::SshLauncher launcher(&l.uv, "");
    std::vector<std::string> words = {"a b",    "it's", "\"dq\"", "$HOME", "`id`", "$(id)", "a;b", "a|b&c",
                                      "l1\nl2", "*",    "",       "\\",    "'",    "-n",    "~",   "x\ty"};
    std::vector<std::string> argv = {"sh", "-c", "for a; do printf '%s\\0' \"$a\"; done >\"$LUAFLOW_OUTPUT\"",
                                     "sh"};
    argv.insert(argv.end(), words.begin(), words.end());
    Run r(sshd, argv);
    r.start(launcher);
    REQUIRE(l.run_until([&] { return r.exit.has_value(); }));
    REQUIRE(r.exit->error == "");
    std::string got = read_file(r.spec.output_file);
    std::vector<std::string> back;
    std::stringstream split(got);
    for (std::string w; std::getline(split, w, '\0');)
        back.push_back(w);
    CHECK(back == words);
    CHECK(exec::shell_quote("it's") == "'it'\\''s'");
}

TEST_CASE("ssh launcher: the timeout stops the remote process group, a grandchild too") {
    SSHD_OR_SKIP(sshd);
    Loop l;
    exec::SshLauncher launcher(&l.uv, "");
    testing::TempDir pids;
    Run r(sshd, {"sh", "-c",
                 "sleep 60 & echo $! >" + pids.file("grandchild") + "; echo $$ >" + pids.file("leader") +
                     "; wait"});
    r.spec.timeout_ms = 1500;
    std::uint64_t start = uv_hrtime();
    r.start(launcher);
    REQUIRE(l.run_until([&] { return r.exit.has_value(); }));
    CHECK(r.exit->timed_out);
    CHECK(r.exit->error == "");
    CHECK(r.exit->signal == SIGTERM);
    CHECK(seconds_between(start, r.exit_ns) >= 1.4);
    CHECK(seconds_between(start, r.exit_ns) < 8); // the SIGTERM did it, not the SIGKILL
    int grandchild = std::atoi(read_file(pids.file("grandchild")).c_str());
    int leader = std::atoi(read_file(pids.file("leader")).c_str());
    REQUIRE(grandchild > 0);
    CHECK(process_gone(grandchild));
    CHECK(process_gone(leader));
}

TEST_CASE("ssh launcher: SIGKILL follows an ignored SIGTERM 10 s after the timeout") {
    SSHD_OR_SKIP(sshd);
    Loop l;
    exec::SshLauncher launcher(&l.uv, "");
    testing::TempDir pids;
    // The timeout comes well after the connection and the trap are set up.
    Run r(sshd, {"sh", "-c",
                 "trap '' TERM; sleep 60 & echo $! >" + pids.file("grandchild") +
                     "; echo ready; while :; do sleep 0.1; done"});
    r.spec.timeout_ms = 2000;
    std::uint64_t start = uv_hrtime();
    r.start(launcher);
    REQUIRE(l.run_until([&] { return r.exit.has_value(); }, 30'000));
    double took = seconds_between(start, r.exit_ns);
    CHECK(r.exit->timed_out);
    CHECK(r.exit->signal == SIGKILL);
    CHECK(r.lines_of(ChildStream::out) == std::vector<std::string>{"ready"});
    CHECK(took >= 11.9);
    CHECK(took < 17);
    int grandchild = std::atoi(read_file(pids.file("grandchild")).c_str());
    REQUIRE(grandchild > 0);
    CHECK(process_gone(grandchild));
}

TEST_CASE("ssh launcher: destroying the job stops the remote group, and nothing is called") {
    SSHD_OR_SKIP(sshd);
    Loop l;
    exec::SshLauncher launcher(&l.uv, "");
    auto r =
        std::make_unique<Run>(sshd, std::vector<std::string>{"sh", "-c",
                                                             "sleep 60 & echo $!; echo \"$LUAFLOW_SCRATCH\"; "
                                                             "sleep 60"});
    auto callbacks = r->callbacks();
    callbacks.on_exit = [](const JobExit&) { FAIL("a destroyed job reported"); };
    auto started = launcher.start(r->spec, callbacks);
    REQUIRE(started);
    r->job = std::move(*started);
    REQUIRE(l.run_until([&] { return r->lines.size() >= 2; }));
    int grandchild = std::atoi(r->lines[0].second.c_str());
    std::string remote_dir = r->lines[1].second;
    REQUIRE(grandchild > 0);
    r.reset(); // the job, and what its callbacks point to
    std::uint64_t start = uv_hrtime();
    uv_run(&l.uv, UV_RUN_DEFAULT); // returns once the local ssh is gone and its handles closed
    CHECK(seconds_between(start, uv_hrtime()) < 5);
    CHECK(soon([&] { return process_gone(grandchild); }));
    CHECK(soon([&] { return !fs::exists(remote_dir); }));
}

TEST_CASE("ssh launcher: a local ssh killed with SIGKILL (a crashed daemon) still stops the remote group") {
    SSHD_OR_SKIP(sshd);
    Loop l;
    exec::SshLauncher launcher(&l.uv, "");
    Run r(sshd, {"sh", "-c", "sleep 60 & echo $!; sleep 60"});
    r.start(launcher);
    REQUIRE(l.run_until([&] { return !r.lines.empty(); }));
    int grandchild = std::atoi(r.lines[0].second.c_str());
    REQUIRE(grandchild > 0);
    // The local ssh is the only process with the job's marker whose parent is this test.
    int ssh = 0;
    for (int pid : processes_of_job(r.spec.name))
        if (read_file("/proc/" + std::to_string(pid) + "/comm") == "ssh\n") ssh = pid;
    REQUIRE(ssh > 0);
    REQUIRE(::kill(ssh, SIGKILL) == 0);
    REQUIRE(l.run_until([&] { return r.exit.has_value(); }));
    CHECK(r.exit->error.find("killed by signal") != std::string::npos);
    CHECK(soon([&] { return process_gone(grandchild); }));
}

TEST_CASE("ssh launcher: ssh's own failures are errors naming the host") {
    SSHD_OR_SKIP(sshd);
    Loop l;
    exec::SshLauncher launcher(&l.uv, "");
    testing::LocalSocket closed(false); // bound, not listening: refused
    Run refused(sshd, {"true"});
    refused.spec.host.ssh.port = closed.port;
    Run denied(sshd, {"true"});
    testing::TempDir keys;
    REQUIRE(std::system(("ssh-keygen -q -t ed25519 -N '' -f " + keys.file("other")).c_str()) == 0);
    denied.spec.host.ssh.identity = keys.file("other");
    refused.start(launcher);
    denied.start(launcher);
    REQUIRE(l.run_until([&] { return refused.exit && denied.exit; }));
    std::string where = "ssh " + testing::Sshd::user() + "@127.0.0.1 port ";
    CHECK(refused.exit->error == where + std::to_string(closed.port) + ": connect to host 127.0.0.1 port " +
                                     std::to_string(closed.port) + ": Connection refused");
    CHECK(denied.exit->error == where + std::to_string(sshd.port()) + ": Permission denied (publickey)");
}

TEST_CASE("ssh launcher: a program or cwd missing on the remote side is an error") {
    SSHD_OR_SKIP(sshd);
    Loop l;
    exec::SshLauncher launcher(&l.uv, "");
    Run missing(sshd, {"luaflow-no-such-program", "x"});
    Run no_dir(sshd, {"true"});
    no_dir.spec.cwd = "/nonexistent/luaflow-dir";
    missing.start(launcher);
    no_dir.start(launcher);
    REQUIRE(l.run_until([&] { return missing.exit && no_dir.exit; }));
    std::string where = "ssh " + testing::Sshd::user() + "@127.0.0.1 port " + std::to_string(sshd.port());
    CHECK(missing.exit->error == where + ": cannot start 'luaflow-no-such-program': not found");
    CHECK(no_dir.exit->error == where + ": cannot change to directory /nonexistent/luaflow-dir");
    Run bad_env(sshd, {"true"});
    bad_env.spec.own_env["A-B"] = "x";
    CHECK_FALSE(launcher.start(bad_env.spec, bad_env.callbacks()));
}

TEST_CASE("ssh launcher: nothing of a quick job stays behind on the remote side") {
    SSHD_OR_SKIP(sshd);
    Loop l;
    exec::SshLauncher launcher(&l.uv, "");
    // A program that ends at once races the wrapper's watcher starting up: it must go all the same.
    std::vector<std::unique_ptr<Run>> runs;
    for (int i = 0; i < 6; ++i) {
        runs.push_back(
            std::make_unique<Run>(sshd, std::vector<std::string>{"sh", "-c", "echo $LUAFLOW_SCRATCH"}));
        runs.back()->start(launcher);
    }
    REQUIRE(l.run_until([&] {
        for (auto& r : runs)
            if (!r->exit) return false;
        return true;
    }));
    for (auto& r : runs) {
        auto out = r->lines_of(ChildStream::out);
        REQUIRE(out.size() == 1);
        CHECK(!fs::exists(out[0]));
        // The wrapper's processes name the job directory on their command lines.
        CHECK(soon(
            [&] {
                for (const auto& e : fs::directory_iterator("/proc")) {
                    std::string cmdline = read_file(e.path().string() + "/cmdline");
                    if (cmdline.find(out[0]) != std::string::npos) return false;
                }
                return true;
            },
            3000));
    }
}
