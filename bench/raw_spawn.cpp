// The physical limit bench/subprocess_bench.py compares the daemon's `cmd` actions with: how many times
// per second a bare libuv loop can run a program to its end, with K children in flight, on the same
// machine, in the same run.
//
//   raw_spawn [-n N] [-k K] [--stdio pipes|ignore] [--spawner uv|posix_spawn] [--ballast MIB] [--vmas V]
//             [--job-files DIR]
//             (defaults 2000, 1, pipes, uv, 0, 0, none)
//
// --stdio pipes   stdout and stderr are pipes read to EOF, and a spawn is done once the exit has arrived
//                 and both pipes are at EOF: what the daemon's loop/child_process.cpp waits for
// --stdio ignore  stdin, stdout and stderr are /dev/null; done at the exit
// --spawner uv           uv_spawn, UV_PROCESS_DETACHED (the child leads a new process group), as the
//                        daemon does; libuv 1.44 forks on Linux
// --spawner posix_spawn  glibc's posix_spawn (clone(CLONE_VM | CLONE_VFORK): no copy of the parent's
//                        address space) with POSIX_SPAWN_SETSID, the exit seen through a pidfd polled
//                        by a uv_poll_t and reaped with waitid(P_PIDFD): what the daemon could do instead
// --job-files DIR  each child runs in a directory of its own made for it, DIR/N, holding a 300-byte
//                  file written before the spawn: the files SPEC 5 gives a job (its fresh scratch
//                  directory as its cwd, LUAFLOW_INPUT in it), made the cheapest way (inline, on the
//                  loop). On an ext4 without a journal each new inode costs in proportion to the inodes
//                  deleted in the last minutes, so this limit moves with the disk's recent history and
//                  is measured next to the daemon, on the same filesystem.
// The child inherits this process's environment. The next spawn starts in the callback that ended the
// previous one. --ballast touches that many MiB of heap first and --vmas maps that many separate
// one-page regions: a fork copies the parent's memory map (per mapping) and the page tables of its
// anonymous memory, and the child's execve then tears that copy down, so a forking spawner slows down
// as the parent grows (luaflowd: ~19 MiB RSS, ~3 MiB anonymous, ~260 mappings).
//
// Prints one JSON line: {"n":N,"inflight":K,"stdio":"pipes","spawner":"uv","ballast_mib":B,"vmas":V,
// "job_files":J,"maps":M,"seconds":S,"rate":R,"cpu_us":C,"children_cpu_us":CC,"in_spawn_us":I,"failed":F}
//   C   this process's user + system time per spawn (the loop's share, comparable with the daemon's own)
//   CC  the children's, per spawn (before and after their execve)
//   M   this process's mappings before the first spawn
//   I   the time per spawn the loop was blocked inside the spawn call: uv_spawn returns once the child
//       has exec'd, i.e. after the fork and the child's teardown of its copy of the parent's memory map
//   F   spawns that failed or exited non-zero
#include <uv.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {

struct Bench;

// One child: its process handle and, with pipes, its two output pipes. Freed once libuv has closed
// every handle it holds.
struct Spawn {
    Bench* bench = nullptr;
    uv_process_t process{};
    uv_pipe_t out{};
    uv_pipe_t err{};
    uv_poll_t exit_poll{}; // posix_spawn: the pidfd, readable once the child has exited
    int pidfd = -1;
    int open = 0; // handles initialised and not yet closed
    int eofs = 0;
    bool exited = false;
    bool done = false;
};

struct Bench {
    uv_loop_t* loop = nullptr;
    bool pipes = true;
    bool posix = false;
    int total = 0;
    int started = 0;
    int finished = 0;
    int failed = 0;
    double in_spawn_us = 0; // the loop blocked inside uv_spawn / posix_spawn, in total
    std::string job_files;  // --job-files DIR, or empty
    char buffer[64 * 1024];
};

void start_one(Bench& b);

void on_close(uv_handle_t* h) {
    auto* s = static_cast<Spawn*>(h->data);
    if (h == reinterpret_cast<uv_handle_t*>(&s->exit_poll)) ::close(s->pidfd);
    if (--s->open == 0) delete s;
}

void close_handle(uv_handle_t* h) {
    if (!uv_is_closing(h)) uv_close(h, on_close);
}

void maybe_done(Spawn* s) {
    if (s->done || !s->exited || (s->bench->pipes && s->eofs < 2)) return;
    s->done = true;
    Bench& b = *s->bench;
    ++b.finished;
    if (b.started < b.total) start_one(b);
}

void on_exit(uv_process_t* p, int64_t status, int signal) {
    auto* s = static_cast<Spawn*>(p->data);
    if (status != 0 || signal != 0) ++s->bench->failed;
    s->exited = true;
    close_handle(reinterpret_cast<uv_handle_t*>(&s->process));
    maybe_done(s);
}

void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
    Bench* b = static_cast<Spawn*>(h->data)->bench;
    buf->base = b->buffer;
    buf->len = sizeof b->buffer;
}

void on_read(uv_stream_t* stream, ssize_t n, const uv_buf_t*) {
    if (n >= 0) return;
    // UV_EOF, or a read error: either way no more comes.
    auto* s = static_cast<Spawn*>(stream->data);
    ++s->eofs;
    close_handle(reinterpret_cast<uv_handle_t*>(stream));
    maybe_done(s);
}

char program[] = "/bin/true";
char* args[] = {program, nullptr};

void on_pidfd(uv_poll_t* poll, int, int) {
    auto* s = static_cast<Spawn*>(poll->data);
    siginfo_t info{};
    if (::waitid(P_PIDFD, static_cast<id_t>(s->pidfd), &info, WEXITED | WNOHANG) != 0) {
        ++s->bench->failed;
    } else if (info.si_pid == 0) {
        return; // not yet
    } else if (info.si_code != CLD_EXITED || info.si_status != 0) {
        ++s->bench->failed;
    }
    s->exited = true;
    uv_poll_stop(poll);
    close_handle(reinterpret_cast<uv_handle_t*>(poll));
    maybe_done(s);
}

void start_posix(Bench& b, Spawn* s) {
    int out[2] = {-1, -1}, err[2] = {-1, -1};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    if (b.pipes) {
        // The parent's ends are close-on-exec; dup2 onto 1 and 2 clears the flag in the child.
        if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) std::abort();
        posix_spawn_file_actions_adddup2(&actions, out[1], 1);
        posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    } else {
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    }
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    pid_t pid = 0;
    auto t0 = std::chrono::steady_clock::now();
    int rc = ::posix_spawn(&pid, program, &actions, &attr, args, environ);
    b.in_spawn_us += std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (b.pipes) {
        ::close(out[1]);
        ::close(err[1]);
    }
    if (rc == 0)
        s->pidfd = static_cast<int>(
            ::syscall(SYS_pidfd_open, pid, 0)); // glibc 2.36 declares pidfd_open without extern "C"
    if (rc != 0 || s->pidfd < 0) {
        std::fprintf(stderr, "raw_spawn: posix_spawn: %s\n", std::strerror(rc != 0 ? rc : errno));
        if (b.pipes) {
            ::close(out[0]);
            ::close(err[0]);
        }
        ++b.failed;
        s->exited = true;
        s->eofs = 2;
        s->done = true;
        ++b.finished;
        delete s;
        return;
    }
    uv_poll_init(b.loop, &s->exit_poll, s->pidfd);
    s->exit_poll.data = s;
    ++s->open;
    uv_poll_start(&s->exit_poll, UV_READABLE, on_pidfd);
    if (b.pipes) {
        int ends[2] = {out[0], err[0]};
        uv_pipe_t* pipes[2] = {&s->out, &s->err};
        for (int i = 0; i < 2; ++i) {
            uv_pipe_init(b.loop, pipes[i], 0);
            pipes[i]->data = s;
            ++s->open;
            uv_pipe_open(pipes[i], ends[i]);
            uv_read_start(reinterpret_cast<uv_stream_t*>(pipes[i]), on_alloc, on_read);
        }
    }
}

void start_one(Bench& b) {
    ++b.started;
    auto* s = new Spawn;
    s->bench = &b;
    s->process.data = s;
    if (b.posix) return start_posix(b, s);
    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_IGNORE;
    if (b.pipes) {
        for (uv_pipe_t* p : {&s->out, &s->err}) {
            uv_pipe_init(b.loop, p, 0);
            p->data = s;
            ++s->open;
        }
        stdio[1].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
        stdio[1].data.stream = reinterpret_cast<uv_stream_t*>(&s->out);
        stdio[2].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
        stdio[2].data.stream = reinterpret_cast<uv_stream_t*>(&s->err);
    } else {
        stdio[1].flags = UV_IGNORE;
        stdio[2].flags = UV_IGNORE;
    }
    uv_process_options_t opts{};
    std::string cwd;
    if (!b.job_files.empty()) {
        cwd = b.job_files + "/" + std::to_string(b.started);
        static const std::string input(300, 'x');
        int fd = -1;
        if (::mkdir(cwd.c_str(), 0755) != 0 ||
            (fd = ::open((cwd + "/input.json").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) <
                0 ||
            ::write(fd, input.data(), input.size()) != static_cast<ssize_t>(input.size())) {
            std::fprintf(stderr, "raw_spawn: %s: %s\n", cwd.c_str(), std::strerror(errno));
            std::abort();
        }
        ::close(fd);
        opts.cwd = cwd.c_str();
    }
    opts.file = program;
    opts.args = args;
    opts.flags = UV_PROCESS_DETACHED;
    opts.stdio_count = 3;
    opts.stdio = stdio;
    opts.exit_cb = on_exit;
    auto t0 = std::chrono::steady_clock::now();
    int rc = uv_spawn(b.loop, &s->process, &opts);
    b.in_spawn_us += std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    ++s->open;
    if (rc != 0) {
        std::fprintf(stderr, "raw_spawn: uv_spawn: %s\n", uv_strerror(rc));
        ++b.failed;
        // libuv: the process handle must be closed even when uv_spawn fails.
        s->exited = true;
        s->eofs = 2;
        close_handle(reinterpret_cast<uv_handle_t*>(&s->process));
        if (b.pipes) {
            close_handle(reinterpret_cast<uv_handle_t*>(&s->out));
            close_handle(reinterpret_cast<uv_handle_t*>(&s->err));
        }
        maybe_done(s);
        return;
    }
    if (b.pipes) {
        uv_read_start(reinterpret_cast<uv_stream_t*>(&s->out), on_alloc, on_read);
        uv_read_start(reinterpret_cast<uv_stream_t*>(&s->err), on_alloc, on_read);
    }
}

double cpu_us(int who) {
    rusage ru{};
    ::getrusage(who, &ru);
    return (static_cast<double>(ru.ru_utime.tv_sec) + static_cast<double>(ru.ru_stime.tv_sec)) * 1e6 +
           static_cast<double>(ru.ru_utime.tv_usec) + static_cast<double>(ru.ru_stime.tv_usec);
}

int usage() {
    std::fprintf(stderr, "usage: raw_spawn [-n N] [-k K] [--stdio pipes|ignore] [--spawner uv|posix_spawn] "
                         "[--ballast MIB] [--vmas V] [--job-files DIR]\n");
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    int n = 2000, inflight = 1;
    long ballast_mib = 0, vmas = 0;
    std::string stdio = "pipes", spawner = "uv", job_files;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (i + 1 >= argc) return usage();
        const char* v = argv[++i];
        if (arg == "-n")
            n = std::atoi(v);
        else if (arg == "-k")
            inflight = std::atoi(v);
        else if (arg == "--stdio")
            stdio = v;
        else if (arg == "--spawner")
            spawner = v;
        else if (arg == "--ballast")
            ballast_mib = std::atol(v);
        else if (arg == "--vmas")
            vmas = std::atol(v);
        else if (arg == "--job-files")
            job_files = v;
        else
            return usage();
    }
    if (n <= 0 || inflight <= 0 || (stdio != "pipes" && stdio != "ignore") ||
        (spawner != "uv" && spawner != "posix_spawn") || ballast_mib < 0 || vmas < 0 ||
        (!job_files.empty() && spawner != "uv"))
        return usage();
    std::vector<char> ballast(static_cast<size_t>(ballast_mib) << 20);
    for (size_t i = 0; i < ballast.size(); i += 4096)
        ballast[i] = 1; // resident, so that a fork copies its page tables
    // Separate mappings: neighbours differ in protection, so the kernel cannot merge them.
    long page = ::sysconf(_SC_PAGESIZE);
    for (long i = 0; i < vmas; ++i) {
        int prot = i % 2 ? PROT_READ : PROT_READ | PROT_WRITE;
        void* p = ::mmap(nullptr, static_cast<size_t>(page), prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return 1;
        if (prot & PROT_WRITE) *static_cast<char*>(p) = 1;
    }

    int maps = 0;
    if (std::FILE* f = std::fopen("/proc/self/maps", "r")) {
        for (int c; (c = std::fgetc(f)) != EOF;)
            maps += c == '\n';
        std::fclose(f);
    }

    auto bench = std::make_unique<Bench>();
    Bench& b = *bench;
    b.loop = uv_default_loop();
    b.pipes = stdio == "pipes";
    b.posix = spawner == "posix_spawn";
    b.total = n;
    b.job_files = job_files;
    double self0 = cpu_us(RUSAGE_SELF), children0 = cpu_us(RUSAGE_CHILDREN);
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < inflight && b.started < b.total; ++i)
        start_one(b);
    uv_run(b.loop, UV_RUN_DEFAULT);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double self = (cpu_us(RUSAGE_SELF) - self0) / n, children = (cpu_us(RUSAGE_CHILDREN) - children0) / n;
    std::printf(
        "{\"n\":%d,\"inflight\":%d,\"stdio\":\"%s\",\"spawner\":\"%s\",\"ballast_mib\":%ld,\"vmas\":%ld,"
        "\"job_files\":%s,\"maps\":%d,"
        "\"seconds\":%.4f,\"rate\":%.1f,\"cpu_us\":%.1f,\"children_cpu_us\":%.1f,\"in_spawn_us\":%.1f,"
        "\"failed\":%d}\n",
        n, inflight, stdio.c_str(), spawner.c_str(), ballast_mib, vmas, job_files.empty() ? "false" : "true",
        maps, s, b.finished / s, self, children, b.in_spawn_us / n, b.failed);
    uv_loop_close(b.loop);
    return b.failed == 0 ? 0 : 1;
}
