#include "stdlib/fs_ops.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <utility>

namespace luaflow::stdlib {

namespace {

class Fd {
  public:
    Fd() = default;
    // Takes a descriptor, or a negative errno from open_beneath (then holds nothing).
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Fd& operator=(Fd&& o) noexcept {
        if (this != &o) {
            if (fd_ >= 0) ::close(fd_);
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    int get() const { return fd_; }
    int release() { return std::exchange(fd_, -1); }
    explicit operator bool() const { return fd_ >= 0; }

  private:
    int fd_ = -1;
};

// Set once the kernel (or a seccomp filter) answers ENOSYS: from then on every open uses the fallback.
std::atomic<bool> g_no_openat2{false};

std::string errno_text(int err) {
    char buf[128];
    return strerror_r(err, buf, sizeof buf); // the GNU strerror_r: thread-safe, returns the text
}

std::string root_name(const FsTarget& t) {
    return t.root_is_scratch ? "the job's scratch directory" : t.root;
}

Error fail(const FsTarget& t, int err) {
    if (err == EXDEV)
        return make_error(ErrorCode::invalid,
                          t.fn + ": " + t.shown +
                              " is outside the sandbox: a symlink on the way leads out of " + root_name(t));
    return make_error(err == ENOENT ? ErrorCode::not_found : ErrorCode::unavailable,
                      t.fn + ": " + t.shown + ": " + errno_text(err));
}

std::string below(const std::string& root, const std::string& rel) {
    if (rel == ".") return root;
    return root == "/" ? "/" + rel : root + "/" + rel;
}

int real_path(const std::string& path, std::string& out) {
    std::unique_ptr<char, decltype(&std::free)> r(::realpath(path.c_str(), nullptr), &std::free);
    if (!r) return -errno;
    out = r.get();
    return 0;
}

// Where root/rel really leads, as a symlink-free path below root's real path ("." for the root
// itself); -EXDEV when that is outside root.
int real_rel(const std::string& root, const std::string& rel, std::string& out) {
    std::string root_real, full_real;
    if (int r = real_path(root, root_real); r < 0) return r;
    if (int r = real_path(below(root, rel), full_real); r < 0) return r;
    if (full_real == root_real) {
        out = ".";
        return 0;
    }
    std::string prefix = root_real == "/" ? "/" : root_real + "/";
    if (full_real.compare(0, prefix.size(), prefix) != 0) return -EXDEV;
    out = full_real.substr(prefix.size());
    return 0;
}

#ifdef SYS_openat2
int sys_openat2(int dirfd, const std::string& path, int flags, std::uint64_t resolve) {
    open_how how{};
    how.flags = static_cast<std::uint64_t>(flags);
    how.resolve = resolve;
    for (int tries = 0;; ++tries) {
        long fd = ::syscall(SYS_openat2, dirfd, path.c_str(), &how, sizeof how);
        if (fd >= 0) return static_cast<int>(fd);
        // openat2(2): EAGAIN means a rename or mount raced the check of "..", and the caller may retry.
        if ((errno == EAGAIN || errno == EINTR) && tries < 16) continue;
        return -errno;
    }
}
#endif

// Opens root/rel without leaving root: a descriptor, or -errno (-EXDEV: the path leads out of root).
int open_beneath(int root_fd, const FsTarget& t, const std::string& rel, int flags, FsResolver resolver) {
    // openat2 refuses O_PATH with any flag but O_DIRECTORY, O_NOFOLLOW and O_CLOEXEC (EINVAL).
    flags |= O_CLOEXEC | ((flags & O_PATH) ? 0 : O_NOCTTY);
#ifdef SYS_openat2
    if (resolver == FsResolver::automatic && !g_no_openat2.load(std::memory_order_relaxed)) {
        int fd = sys_openat2(root_fd, rel, flags, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
        if (fd != -ENOSYS) {
            if (fd != -EXDEV) return fd;
            // RESOLVE_BENEATH refuses every absolute symlink, even one that points inside the root. See
            // where the path really leads, and open that symlink-free path with symlinks refused: a
            // symlink swapped in meanwhile fails the open instead of leading out.
            std::string real;
            if (real_rel(t.root, rel, real) < 0) return -EXDEV;
            fd = sys_openat2(root_fd, real, flags,
                             RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
            return fd == -ELOOP ? -EXDEV : fd;
        }
        g_no_openat2.store(true, std::memory_order_relaxed);
    }
#endif
    // No openat2 (a kernel before 5.6, or a seccomp filter): trust realpath. A rename between the check
    // and the open could still redirect the path; openat2 closes that window where it exists.
    std::string real;
    if (int r = real_rel(t.root, rel, real); r < 0) return r;
    int fd = ::openat(root_fd, real.c_str(), flags | O_NOFOLLOW);
    return fd >= 0 ? fd : -errno;
}

int open_root(const FsTarget& t) {
    int fd = ::open(t.root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    return fd >= 0 ? fd : -errno;
}

std::pair<std::string, std::string> split_last(const std::string& rel) {
    std::size_t slash = rel.rfind('/');
    if (slash == std::string::npos) return {".", rel};
    return {rel.substr(0, slash), rel.substr(slash + 1)};
}

// Opens root/dir, making the directories that are missing on the way, each below root.
int make_dirs(int root_fd, const FsTarget& t, const std::string& dir, FsResolver resolver) {
    int fd = open_beneath(root_fd, t, dir, O_PATH | O_DIRECTORY, resolver);
    if (fd != -ENOENT) return fd;
    Fd cur(open_beneath(root_fd, t, ".", O_PATH | O_DIRECTORY, resolver));
    if (!cur) return cur.get();
    std::string prefix;
    std::size_t i = 0;
    while (i <= dir.size()) {
        std::size_t j = std::min(dir.find('/', i), dir.size());
        std::string part = dir.substr(i, j - i);
        i = j + 1;
        prefix = prefix.empty() ? part : prefix + "/" + part;
        int next = open_beneath(root_fd, t, prefix, O_PATH | O_DIRECTORY, resolver);
        if (next == -ENOENT) {
            if (::mkdirat(cur.get(), part.c_str(), 0777) != 0 && errno != EEXIST) return -errno;
            next = open_beneath(root_fd, t, prefix, O_PATH | O_DIRECTORY, resolver);
        }
        if (next < 0) return next;
        cur = Fd(next);
    }
    return cur.release();
}

// A name beside `name` that readers ignore until the rename: hidden, and unique per attempt.
std::string temp_name(const std::string& name) {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    char suffix[24];
    std::snprintf(suffix, sizeof suffix, ".luaflow-%08llx",
                  static_cast<unsigned long long>(rng() & 0xffffffffu));
    return "." + name.substr(0, 200) + suffix; // within NAME_MAX (255) whatever the name's length
}

} // namespace

Result<std::string> fs_read_file(const FsTarget& t, std::size_t max_bytes, const std::string& limit_text,
                                 FsResolver resolver) {
    Fd root(open_root(t));
    if (!root) return fail(t, -root.get());
    // O_NONBLOCK: opening a FIFO must not hang a pool thread (it is refused below anyway).
    Fd fd(open_beneath(root.get(), t, t.rel, O_RDONLY | O_NONBLOCK, resolver));
    if (!fd) return fail(t, -fd.get());
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return fail(t, errno);
    if (S_ISDIR(st.st_mode)) return fail(t, EISDIR);
    if (!S_ISREG(st.st_mode))
        return make_error(ErrorCode::invalid, t.fn + ": " + t.shown + " is not a regular file");
    auto too_big = [&](std::size_t size) {
        return make_error(ErrorCode::invalid, t.fn + ": " + t.shown + " is " + std::to_string(size) +
                                                  " bytes, more than " + limit_text);
    };
    if (static_cast<std::uint64_t>(st.st_size) > max_bytes)
        return too_big(static_cast<std::size_t>(st.st_size));
    std::size_t expected = static_cast<std::size_t>(st.st_size);
    std::string data;
    data.reserve(expected);
    constexpr std::size_t kChunk = 1u << 20;
    for (;;) {
        std::size_t len = data.size();
        // The size fstat gave, then small reads to find the end: the file may grow meanwhile, and one
        // byte past the cap is enough to notice.
        std::size_t want = len < expected ? std::min(kChunk, expected - len) : std::size_t{4096};
        want = std::min(want, max_bytes + 1 - len);
        data.resize(len + want);
        ssize_t n = ::read(fd.get(), data.data() + len, want);
        if (n < 0) {
            if (errno == EINTR) {
                data.resize(len);
                continue;
            }
            return fail(t, errno);
        }
        data.resize(len + static_cast<std::size_t>(n));
        if (n == 0) break;
        if (data.size() > max_bytes) return too_big(data.size());
    }
    return data;
}

Result<void> fs_write_file(const FsTarget& t, std::string_view data, FsResolver resolver) {
    if (t.rel == ".") return fail(t, EISDIR);
    Fd root(open_root(t));
    if (!root && root.get() == -ENOENT && t.root_is_scratch) {
        // The scratch directory is made on first use; the daemon names it, so it needs no checks.
        std::error_code ec;
        std::filesystem::create_directories(t.root, ec);
        if (ec)
            return make_error(ErrorCode::unavailable, t.fn + ": " + t.shown +
                                                          ": cannot create the job's scratch directory " +
                                                          t.root + ": " + ec.message());
        root = Fd(open_root(t));
    }
    if (!root) return fail(t, -root.get());
    auto [dir_rel, name] = split_last(t.rel);
    Fd dir(make_dirs(root.get(), t, dir_rel, resolver));
    if (!dir) return fail(t, -dir.get());

    struct stat st {};
    bool exists = ::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (exists && S_ISLNK(st.st_mode)) {
        // Write through a symlink that stays in the root: replace the file it names, not the link.
        Fd target(open_beneath(root.get(), t, t.rel, O_PATH, resolver));
        if (target.get() == -ENOENT)
            return make_error(ErrorCode::invalid, t.fn + ": " + t.shown + " is a symlink to a missing file");
        if (!target) return fail(t, -target.get());
        if (::fstat(target.get(), &st) != 0) return fail(t, errno);
        std::string real;
        if (int r = real_rel(t.root, t.rel, real); r < 0) return fail(t, -r);
        if (real == ".") return fail(t, EISDIR);
        auto [real_dir, real_name] = split_last(real);
        dir = Fd(open_beneath(root.get(), t, real_dir, O_PATH | O_DIRECTORY, resolver));
        if (!dir) return fail(t, -dir.get());
        name = real_name;
    }
    if (exists && S_ISDIR(st.st_mode)) return fail(t, EISDIR);

    // Readers see the old file or the new one, never a part: write a temp file beside it and rename it
    // over the name (rename(2) is atomic within a directory). fsync first, so that after a power loss
    // the name holds either version, not an empty or torn file (ext4 and XFS may otherwise commit the
    // rename before the data). The directory is not synced: losing the newest rename to a power loss
    // leaves the old file, as the store may lose its last commits.
    std::string tmp;
    Fd out;
    for (int attempt = 0; attempt < 100 && !out; ++attempt) {
        tmp = temp_name(name);
        out =
            Fd(::openat(dir.get(), tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0666));
        if (!out && errno != EEXIST) return fail(t, errno);
    }
    if (!out) return fail(t, EEXIST);
    auto abandon = [&](int err) {
        ::unlinkat(dir.get(), tmp.c_str(), 0);
        return fail(t, err);
    };
    // A replaced file keeps its permissions (as sed -i and editors do); a new one gets 0666 & ~umask.
    if (exists && S_ISREG(st.st_mode) && ::fchmod(out.get(), st.st_mode & 07777) != 0) return abandon(errno);
    std::size_t off = 0;
    while (off < data.size()) {
        ssize_t n = ::write(out.get(), data.data() + off, data.size() - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            return abandon(errno);
        }
        off += static_cast<std::size_t>(n);
    }
    if (::fsync(out.get()) != 0) return abandon(errno);
    if (::close(out.release()) != 0) return abandon(errno);
    if (::renameat(dir.get(), tmp.c_str(), dir.get(), name.c_str()) != 0) return abandon(errno);
    return {};
}

Result<std::vector<std::string>> fs_list_dir(const FsTarget& t, FsResolver resolver) {
    std::vector<std::string> names;
    Fd root(open_root(t));
    // The scratch directory exists for the script from the start; it is made only when first written.
    if (!root && root.get() == -ENOENT && t.is_scratch) return names;
    if (!root) return fail(t, -root.get());
    int fd = open_beneath(root.get(), t, t.rel, O_RDONLY | O_DIRECTORY, resolver);
    if (fd == -ENOENT && t.is_scratch) return names;
    if (fd < 0) return fail(t, -fd);
    std::unique_ptr<DIR, int (*)(DIR*)> d(::fdopendir(fd), &::closedir);
    if (!d) {
        int err = errno;
        ::close(fd);
        return fail(t, err);
    }
    for (;;) {
        errno = 0;
        dirent* e = ::readdir(d.get());
        if (!e) {
            if (errno != 0) return fail(t, errno);
            break;
        }
        if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
        names.emplace_back(e->d_name);
    }
    std::sort(names.begin(), names.end());
    return names;
}

} // namespace luaflow::stdlib
