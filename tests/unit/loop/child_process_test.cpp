// loop::ChildProcess on a real loop with real programs: output as chunks and lines, stdin, exit codes and
// signals, the timeout and terminate() reaching the whole process group, SIGKILL after an ignored
// SIGTERM, and an abandoned child that still terminates and frees everything (run under ASan too).
#include "loop/child_process.hpp"
#include "loop/marked_processes.hpp"
#include "loop/uv_handle.hpp"
#include "tests/unit/support/temp_dir.hpp"
#include "tests/unit/support/test_loop.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

using namespace luaflow;
using loop::ChildExit;
using loop::ChildProcess;
using loop::ChildStream;

namespace {

using testing::Loop;

// What a child delivered.
struct Seen {
    std::string out, err;
    std::vector<std::pair<ChildStream, std::string>> lines;
    std::optional<ChildExit> exit;
    int exits = 0;
    std::uint64_t exit_ns = 0;

    loop::ChildCallbacks callbacks(bool chunks = true, bool lines_too = true) {
        loop::ChildCallbacks c;
        if (chunks)
            c.on_chunk = [this](ChildStream s, std::string_view chunk) {
                (s == ChildStream::out ? out : err).append(chunk);
            };
        if (lines_too)
            c.on_line = [this](ChildStream s, std::string line) { lines.emplace_back(s, std::move(line)); };
        c.on_exit = [this](const ChildExit& e) {
            exit = e;
            ++exits;
            exit_ns = uv_hrtime();
        };
        return c;
    }
    std::vector<std::string> lines_of(ChildStream s) const {
        std::vector<std::string> v;
        for (const auto& [stream, line] : lines)
            if (stream == s) v.push_back(line);
        return v;
    }
};

std::map<std::string, std::string> base_env() {
    const char* path = std::getenv("PATH");
    return {{"PATH", path ? path : "/usr/bin:/bin"}};
}

loop::ChildOptions shell(const std::string& script) {
    loop::ChildOptions o;
    o.argv = {"sh", "-c", script};
    o.env = base_env();
    return o;
}

std::unique_ptr<ChildProcess> spawn(Loop& l, loop::ChildOptions o, loop::ChildCallbacks c) {
    auto child = ChildProcess::spawn(&l.uv, std::move(o), std::move(c));
    REQUIRE_MESSAGE(child, (child ? "" : child.error().message));
    return std::move(*child);
}

using testing::process_gone;

bool gone_soon(int pid) {
    std::uint64_t end = uv_hrtime() + 5'000'000'000ull;
    while (!process_gone(pid)) {
        if (uv_hrtime() > end) return false;
        struct timespec ts {
            0, 10'000'000
        };
        ::nanosleep(&ts, nullptr); // polling a condition with a deadline
    }
    return true;
}

double ms_between(std::uint64_t from_ns, std::uint64_t to_ns) {
    return static_cast<double>(to_ns - from_ns) / 1e6;
}

} // namespace

TEST_CASE("child process: captures stdout and stderr as chunks, and the exit code") {
    Loop l;
    Seen seen;
    auto child = spawn(l, shell("printf 'a\\nb'; printf err >&2; exit 3"), seen.callbacks());
    CHECK(child->pid() > 0);
    REQUIRE(l.run_until([&] { return seen.exit.has_value(); }));
    CHECK(seen.out == "a\nb");
    CHECK(seen.err == "err");
    CHECK(seen.exit->code == 3);
    CHECK(seen.exit->signal == 0);
    CHECK_FALSE(seen.exit->timed_out);
    l.run_until([] { return false; }, 50);
    CHECK(seen.exits == 1);
}

TEST_CASE("child process: lines split at newlines, a last line without one comes at EOF") {
    Loop l;
    Seen seen;
    auto child =
        spawn(l, shell("printf 'one\\ntwo\\r\\n\\nthree'; echo e1 >&2"), seen.callbacks(false, true));
    REQUIRE(l.run_until([&] { return seen.exit.has_value(); }));
    CHECK(seen.lines_of(ChildStream::out) == std::vector<std::string>{"one", "two", "", "three"});
    CHECK(seen.lines_of(ChildStream::err) == std::vector<std::string>{"e1"});
    CHECK(seen.out.empty()); // no chunk callback given
    CHECK(seen.exit->code == 0);
}

TEST_CASE("child process: stdin is written, then closed; without it the child reads /dev/null") {
    Loop l;
    Seen with, empty, without;
    loop::ChildOptions o;
    o.argv = {"cat"};
    o.env = base_env();
    o.stdin_data = "hello\nworld";
    auto a = spawn(l, o, with.callbacks());
    o.stdin_data = "";
    auto b = spawn(l, o, empty.callbacks());
    o.stdin_data.reset();
    auto c = spawn(l, o, without.callbacks());
    REQUIRE(l.run_until([&] { return with.exit && empty.exit && without.exit; }));
    CHECK(with.out == "hello\nworld");
    CHECK(empty.out.empty());
    CHECK(without.out.empty());
}

TEST_CASE("child process: a large stdin to a child that first writes a large stdout does not deadlock") {
    Loop l;
    Seen seen;
    constexpr std::size_t kSize = 8u << 20;
    // The child fills stdout (far past a pipe's buffer) before it reads a byte of stdin: a writer that
    // blocked on stdin before reading would wait forever.
    loop::ChildOptions o = shell("head -c 8388608 /dev/zero | tr '\\0' y; cat");
    o.stdin_data = std::string(kSize, 'x');
    auto child = spawn(l, o, seen.callbacks(true, false));
    bool done = l.run_until([&] { return seen.exit.has_value(); }, 60'000);
    if (!done) child.reset();
    REQUIRE(done);
    REQUIRE(seen.out.size() == 2 * kSize);
    CHECK(seen.out.compare(0, kSize, std::string(kSize, 'y')) == 0);
    CHECK(seen.out.compare(kSize, kSize, std::string(kSize, 'x')) == 0);
    CHECK(seen.exit->code == 0);
}

TEST_CASE("child process: a child that exits without reading stdin still finishes") {
    Loop l;
    Seen seen;
    loop::ChildOptions o = shell("exit 0");
    o.stdin_data = std::string(4u << 20, 'z'); // far more than the pipe holds: the write fails (EPIPE)
    auto child = spawn(l, o, seen.callbacks());
    REQUIRE(l.run_until([&] { return seen.exit.has_value(); }));
    CHECK(seen.exit->code == 0);
}

TEST_CASE("child process: a signal that ends the child is reported") {
    Loop l;
    Seen seen;
    auto child = spawn(l, shell("kill -USR1 $$"), seen.callbacks());
    REQUIRE(l.run_until([&] { return seen.exit.has_value(); }));
    CHECK(seen.exit->signal == SIGUSR1);
    CHECK_FALSE(seen.exit->timed_out);
}

TEST_CASE("child process: the result waits for output written after the exit") {
    Loop l;
    Seen seen;
    // The leader exits at once; a background member of its group writes later and holds the pipe.
    auto child = spawn(l, shell("(sleep 0.3; echo late) &"), seen.callbacks());
    REQUIRE(l.run_until([&] { return seen.exit.has_value(); }));
    CHECK(seen.out == "late\n");
    CHECK(seen.exit->code == 0);
}

TEST_CASE("child process: the timeout terminates the whole group, a grandchild too") {
    Loop l;
    Seen seen;
    loop::ChildOptions o = shell("sleep 60 & echo $!; wait");
    o.timeout_ms = 300;
    std::uint64_t start = uv_hrtime();
    auto child = spawn(l, o, seen.callbacks());
    int leader = child->pid();
    REQUIRE(l.run_until([&] { return seen.exit.has_value(); }));
    CHECK(seen.exit->timed_out);
    CHECK(seen.exit->signal == SIGTERM);
    CHECK(ms_between(start, seen.exit_ns) >= 290);
    CHECK(ms_between(start, seen.exit_ns) < 5000); // SIGTERM did it, not the SIGKILL 10 s later
    auto lines = seen.lines_of(ChildStream::out);
    REQUIRE(lines.size() == 1);
    int grandchild = std::atoi(lines[0].c_str());
    REQUIRE(grandchild > 0);
    CHECK(gone_soon(grandchild));
    CHECK(gone_soon(leader));
}

TEST_CASE("child process: SIGKILL follows an ignored SIGTERM after the grace") {
    Loop l;
    Seen seen;
    loop::ChildOptions o = shell("trap '' TERM; echo ready; while :; do sleep 0.05; done");
    o.kill_after_ms = 300;
    std::unique_ptr<ChildProcess> child;
    std::uint64_t terminated_ns = 0;
    loop::ChildCallbacks c = seen.callbacks();
    c.on_line = [&](ChildStream, std::string line) {
        // Only once the trap is set, or the SIGTERM would simply end it.
        if (line.find("ready") != std::string::npos) {
            terminated_ns = uv_hrtime();
            child->terminate();
            child->terminate(); // twice is once
        }
    };
    child = spawn(l, o, c);
    REQUIRE(l.run_until([&] { return seen.exit.has_value(); }));
    REQUIRE(terminated_ns != 0);
    CHECK(seen.exit->signal == SIGKILL);
    CHECK_FALSE(seen.exit->timed_out);
    CHECK(ms_between(terminated_ns, seen.exit_ns) >= 290);
}

TEST_CASE("child process: a grandchild ignoring SIGTERM gets SIGKILL although the leader has exited") {
    Loop l;
    Seen seen;
    // The leader dies of the SIGTERM; the grandchild ignores it and holds the pipes. The result waits for
    // them, so the SIGKILL must still come after the leader's exit.
    loop::ChildOptions o = shell(R"sh((trap '' TERM; sh -c 'echo $$; exec sleep 60') & wait)sh");
    o.kill_after_ms = 300;
    std::unique_ptr<ChildProcess> child;
    int grandchild = 0;
    std::uint64_t terminated_ns = 0;
    loop::ChildCallbacks c = seen.callbacks();
    c.on_line = [&](ChildStream, std::string line) {
        grandchild = std::atoi(line.c_str());
        terminated_ns = uv_hrtime();
        child->terminate();
    };
    child = spawn(l, o, c);
    REQUIRE(l.run_until([&] { return seen.exit.has_value(); }, 10'000));
    CHECK(seen.exit->signal == SIGTERM); // the leader's end
    CHECK(ms_between(terminated_ns, seen.exit_ns) >= 290);
    REQUIRE(grandchild > 0);
    CHECK(gone_soon(grandchild));
}

TEST_CASE("child process: environment, cwd and PATH lookup") {
    Loop l;
    testing::TempDir dir;
    Seen seen, no_path;
    loop::ChildOptions o = shell("echo $FOO; pwd; echo ${HOME-unset}");
    o.env["FOO"] = "bar";
    o.cwd = dir.path();
    auto a = spawn(l, o, seen.callbacks());
    // No PATH at all: execvp looks in /bin:/usr/bin.
    loop::ChildOptions bare;
    bare.argv = {"sh", "-c", "echo ok"};
    auto b = spawn(l, bare, no_path.callbacks());
    REQUIRE(l.run_until([&] { return seen.exit && no_path.exit; }));
    std::string real = std::filesystem::canonical(dir.path()).string();
    CHECK(seen.lines_of(ChildStream::out) == std::vector<std::string>{"bar", real, "unset"});
    CHECK(no_path.out == "ok\n");
}

TEST_CASE("child process: a program that cannot start is an error, and nothing is called") {
    Loop l;
    Seen seen;
    loop::ChildOptions o;
    o.argv = {"luaflow-no-such-program"};
    o.env = base_env();
    auto missing = ChildProcess::spawn(&l.uv, o, seen.callbacks());
    REQUIRE_FALSE(missing);
    CHECK(missing.error().message == "no such file or directory");
    o.argv = {"sh", "-c", "true"};
    o.cwd = "/nonexistent/luaflow-dir";
    auto bad_cwd = ChildProcess::spawn(&l.uv, o, seen.callbacks());
    CHECK_FALSE(bad_cwd);
    o.argv.clear();
    CHECK_FALSE(ChildProcess::spawn(&l.uv, o, seen.callbacks()));
    uv_run(&l.uv, UV_RUN_DEFAULT);
    CHECK(seen.exits == 0);
}

TEST_CASE("child process: abandoned while running, its group is terminated and nothing is called") {
    Loop l;
    auto seen = std::make_unique<Seen>();
    auto child = spawn(l, shell("sleep 60 & echo $!; sleep 60"), seen->callbacks());
    int leader = child->pid();
    REQUIRE(l.run_until([&] { return !seen->lines.empty(); }));
    int grandchild = std::atoi(seen->lines[0].second.c_str());
    REQUIRE(grandchild > 0);
    // The owner goes, and what its callbacks point to with it: a late callback would be a use after
    // free (ASan).
    child.reset();
    seen.reset();
    std::uint64_t start = uv_hrtime();
    uv_run(&l.uv, UV_RUN_DEFAULT); // returns once libuv has closed the child's handles
    CHECK(ms_between(start, uv_hrtime()) < 5000);
    CHECK(process_gone(leader));
    CHECK(gone_soon(grandchild));
}

TEST_CASE("child process: the owner may drop it from inside a callback") {
    Loop l;
    Seen seen;
    std::unique_ptr<ChildProcess> child;
    std::unique_ptr<ChildProcess> quitter;
    int lines = 0;
    loop::ChildCallbacks c = seen.callbacks();
    auto record = c.on_exit;
    c.on_exit = [&, record](const ChildExit& e) {
        record(e);
        child.reset(); // what exec() does: the wait that owns the child goes when the task resumes
    };
    child = spawn(l, shell("echo done"), c);
    // Dropped on its first line, while more lines of the same chunk are pending.
    loop::ChildCallbacks q;
    q.on_line = [&](ChildStream, std::string) {
        ++lines;
        quitter.reset();
    };
    q.on_exit = [&](const ChildExit&) { FAIL("an abandoned child reported"); };
    quitter = spawn(l, shell("printf 'a\\nb\\nc\\n'; sleep 60"), q);
    REQUIRE(l.run_until([&] { return seen.exit && !quitter; }));
    CHECK(!child);
    CHECK(seen.out == "done\n");
    CHECK(lines == 1);
}

TEST_CASE("child process: keep_stdin_open holds stdin open until close_stdin() or terminate()") {
    Loop l;
    Seen closed, terminated;
    // cat ends only at stdin's EOF; the second also ignores the SIGTERM, so only the EOF can end it
    // before the SIGKILL.
    loop::ChildOptions o = shell("cat; echo eof");
    o.stdin_data = "hello\n";
    o.keep_stdin_open = true;
    auto a = spawn(l, o, closed.callbacks());
    o = shell("trap '' TERM; cat; echo eof");
    o.keep_stdin_open = true;
    o.kill_after_ms = 30'000;
    auto b = spawn(l, o, terminated.callbacks());
    REQUIRE(l.run_until([&] { return closed.out == "hello\n"; }));
    l.run_until([] { return false; }, 200);
    CHECK_FALSE(closed.exit); // the data is written, and stdin is still open
    CHECK_FALSE(terminated.exit);
    a->close_stdin();
    a->close_stdin(); // twice is once
    b->terminate();
    REQUIRE(l.run_until([&] { return closed.exit && terminated.exit; }, 5000));
    CHECK(closed.out == "hello\neof\n");
    CHECK(closed.exit->code == 0);
    CHECK(terminated.out == "eof\n");
    CHECK(terminated.exit->signal == 0);
}

TEST_CASE(
    "child process: it starts with every signal at its default, none blocked, leading its own session") {
    // luaflowd ignores SIGPIPE and handles TERM, INT and HUP; glibc's posix_spawn would leave its internal
    // signals 32 and 33 ignored. A job sees none of that.
    std::signal(SIGPIPE, SIG_IGN);
    Loop l;
    Seen seen;
    auto child = spawn(l, shell("grep -E '^Sig(Ign|Blk):' /proc/self/status; ps -o pid=,pgid=,sid= -p $$"),
                       seen.callbacks());
    REQUIRE(l.run_until([&] { return seen.exit.has_value(); }));
    auto lines = seen.lines_of(ChildStream::out);
    REQUIRE(lines.size() == 3);
    CHECK(lines[0] == "SigBlk:\t0000000000000000");
    CHECK(lines[1] == "SigIgn:\t0000000000000000");
    std::istringstream ids(lines[2]);
    int pid = 0, pgid = 0, sid = 0;
    ids >> pid >> pgid >> sid;
    CHECK(pid == child->pid());
    CHECK(pgid == pid);
    CHECK(sid == pid);
}

TEST_CASE(
    "child process: a program is found in the PATH of its own environment, and a missing one is named") {
    testing::TempDir dir;
    std::string bin = dir.file("bin");
    std::filesystem::create_directories(bin);
    {
        std::ofstream f(bin + "/luaflow-test-prog");
        f << "#!/bin/sh\necho found \"$1\"\n";
    }
    std::filesystem::permissions(bin + "/luaflow-test-prog", std::filesystem::perms::owner_all);
    Loop l;
    Seen seen;
    loop::ChildOptions o;
    o.argv = {"luaflow-test-prog", "x"};
    o.env = {{"PATH", "/nonexistent:" + bin}};
    auto child = spawn(l, std::move(o), seen.callbacks());
    REQUIRE(l.run_until([&] { return seen.exit.has_value(); }));
    CHECK(seen.out == "found x\n");
    loop::ChildOptions missing;
    missing.argv = {"luaflow-test-prog"};
    missing.env = {{"PATH", "/nonexistent"}};
    auto failed = ChildProcess::spawn(&l.uv, std::move(missing), {});
    REQUIRE_FALSE(failed);
    CHECK(failed.error().message == "no such file or directory");
}

// Issue 14, item 16: `setsid sleep 1235 & echo started` was timed_out although the shell exited 0.
TEST_CASE("child process: with a marker, a detached grandchild holding the pipe is ended at the exit") {
    Loop l;
    Seen seen;
    loop::ChildOptions o = shell("setsid sh -c 'echo $$; exec sleep 1235' & sleep 0.2; echo started");
    o.env["LUAFLOW_TEST_JOB"] = "marked-" + std::to_string(::getpid());
    o.marker = "LUAFLOW_TEST_JOB";
    o.timeout_ms = 30'000;
    std::uint64_t start = uv_hrtime();
    auto child = spawn(l, o, seen.callbacks());
    REQUIRE(l.run_until([&] { return seen.exit.has_value(); }, 20'000));
    CHECK(ms_between(start, seen.exit_ns) < 5000);
    CHECK_FALSE(seen.exit->timed_out);
    CHECK(seen.exit->code == 0);
    auto lines = seen.lines_of(ChildStream::out);
    REQUIRE(lines.size() == 2);
    CHECK(std::find(lines.begin(), lines.end(), "started") != lines.end());
    int sleeper = std::atoi((lines[0] == "started" ? lines[1] : lines[0]).c_str());
    REQUIRE(sleeper > 0);
    CHECK(gone_soon(sleeper));
}

TEST_CASE(
    "child process: with a marker, a child that exits at once still has its detached grandchild ended") {
    // Within the ledger's short life (spawn_ledger.hpp): the grandchild's pid, not ours, sends the
    // exit to the scan of /proc.
    Loop l;
    Seen seen;
    loop::ChildOptions o = shell("setsid sleep 1236 </dev/null >/dev/null 2>&1 & echo $!");
    o.env["LUAFLOW_TEST_JOB"] = "quick-" + std::to_string(::getpid());
    o.marker = "LUAFLOW_TEST_JOB";
    auto child = spawn(l, o, seen.callbacks());
    REQUIRE(l.run_until([&] { return seen.exit.has_value(); }, 20'000));
    auto lines = seen.lines_of(ChildStream::out);
    REQUIRE(lines.size() == 1);
    int sleeper = std::atoi(lines[0].c_str());
    REQUIRE(sleeper > 0);
    CHECK(gone_soon(sleeper));
}

TEST_CASE("child process: with a marker, a child that started nothing is not looked for in /proc") {
    // Other tests running meanwhile take pids too, and then the scan is due: one spawn of 50 without
    // a foreign pid in its millisecond is enough.
    Loop l;
    bool skipped = false;
    for (int i = 0; i < 50 && !skipped; ++i) {
        Seen seen;
        loop::ChildOptions o;
        o.argv = {"/bin/true"};
        o.env = base_env();
        o.env["LUAFLOW_TEST_JOB"] = "nothing-" + std::to_string(::getpid());
        o.marker = "LUAFLOW_TEST_JOB";
        std::uint64_t reads = loop::marked_process_reads();
        auto child = spawn(l, o, seen.callbacks());
        REQUIRE(l.run_until([&] { return seen.exit.has_value(); }, 20'000));
        l.run_until([] { return false; }, 20); // a scan, if one was started, is counted by now
        skipped = loop::marked_process_reads() == reads;
    }
    CHECK(skipped);
}

TEST_CASE("child process: with a marker, an unmarked holder of the pipe keeps the result a second at most") {
    Loop l;
    Seen seen;
    // env -i: no marker to find it by; it is left running, and the pipes are let go.
    loop::ChildOptions o = shell("env -i setsid sh -c 'echo $$; exec sleep 1236' & sleep 0.2; echo started");
    o.env["LUAFLOW_TEST_JOB"] = "unmarked-" + std::to_string(::getpid());
    o.marker = "LUAFLOW_TEST_JOB";
    o.timeout_ms = 30'000;
    std::uint64_t start = uv_hrtime();
    auto child = spawn(l, o, seen.callbacks());
    REQUIRE(l.run_until([&] { return seen.exit.has_value(); }, 20'000));
    CHECK(ms_between(start, seen.exit_ns) < 5000);
    CHECK_FALSE(seen.exit->timed_out);
    CHECK(seen.exit->code == 0);
    auto lines = seen.lines_of(ChildStream::out);
    REQUIRE(lines.size() == 2);
    int sleeper = std::atoi((lines[0] == "started" ? lines[1] : lines[0]).c_str());
    REQUIRE(sleeper > 0);
    CHECK_FALSE(process_gone(sleeper));
    ::kill(sleeper, SIGKILL);
}

// Issue 14, item 12: each chunk rescanned the partial line from its start, and the line was kept whole.
TEST_CASE("child process: a long line comes cut at 64 KiB, and the lines after it whole") {
    Loop l;
    Seen seen;
    auto child = spawn(l, shell("head -c 5000000 /dev/zero | tr '\\0' x; echo; echo after"),
                       seen.callbacks(false, true));
    REQUIRE(l.run_until([&] { return seen.exit.has_value(); }));
    auto lines = seen.lines_of(ChildStream::out);
    REQUIRE(lines.size() == 2);
    CHECK(lines[0] == std::string(loop::kMaxLineBytes, 'x') + std::string(loop::kLineCutMarker));
    CHECK(lines[1] == "after");
}

// Issue 14, item 17: a job that outlived the daemon could hold what the daemon opened without O_CLOEXEC.
TEST_CASE("child process: a descriptor opened without close-on-exec is not inherited") {
    Loop l;
    Seen seen;
    int leaky = ::open("/dev/null", O_RDONLY); // no O_CLOEXEC, as std::ifstream opens files
    REQUIRE(leaky >= 3);
    auto child = spawn(l, shell("ls /proc/self/fd"), seen.callbacks());
    REQUIRE(l.run_until([&] { return seen.exit.has_value(); }));
    ::close(leaky);
    // ls's own: 0, 1, 2 and the directory it reads.
    auto fds = seen.lines_of(ChildStream::out);
    CHECK(std::find(fds.begin(), fds.end(), std::to_string(leaky)) == fds.end());
    CHECK(fds.size() <= 4);
}
