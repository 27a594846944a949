#include "daemon/store/disk_space.hpp"

#include "common/log.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

namespace luaflow::store {

namespace {

constexpr std::uint64_t kMaxReserve = 8 * 1024 * 1024;
constexpr std::uint64_t kMinReserve = 256 * 1024;
constexpr std::uint64_t kCheckMs = 1000;
// A reading of this much free space stands for the next kRoomyMs: the daemon cannot write a gigabyte in
// a tenth of a second, and a statvfs on every run was 2 % of a run's time (issue 16).
constexpr std::uint64_t kRoomy = std::uint64_t(1) << 30;
constexpr std::uint64_t kRoomyMs = 100;

} // namespace

std::optional<std::uint64_t> free_bytes(const std::string& dir) {
    struct statvfs st {};
    if (::statvfs(dir.c_str(), &st) != 0) return std::nullopt;
    return static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
}

DiskSpace::DiskSpace(uv_loop_t* loop, Db& db, std::string state_dir)
    : db_(db), loop_(loop), dir_(std::move(state_dir)), reserve_path_(dir_ + "/reserve"), timer_(loop) {
    // A sixteenth of the file system, so that a small one (a test's tmpfs) is not half reserve.
    struct statvfs st {};
    std::uint64_t total = ::statvfs(dir_.c_str(), &st) == 0
                              ? static_cast<std::uint64_t>(st.f_blocks) * st.f_frsize
                              : kMaxReserve * 16;
    reserve_bytes_ = std::clamp<std::uint64_t>(total / 16, kMinReserve, kMaxReserve);
    db_.set_on_disk_full([this] { return on_write_failed(); });
    db_.set_admission([this](const std::string& workflow, bool& first) { return admit(workflow, first); });
}

DiskSpace::~DiskSpace() {
    db_.set_on_disk_full(nullptr);
    db_.set_admission(nullptr);
}

void DiskSpace::start() {
    if (!make_reserve()) enter_full(free_bytes(dir_).value_or(0));
}

std::string DiskSpace::message(std::uint64_t free) const {
    return "disk full: " + dir_ + " has " + std::to_string(free) +
           " bytes free; new executions are refused until space returns";
}

bool DiskSpace::make_reserve() {
    struct stat st {};
    if (::stat(reserve_path_.c_str(), &st) == 0 && static_cast<std::uint64_t>(st.st_size) >= reserve_bytes_)
        return true;
    // What would be left once the reserve is made must still be worth admitting work for.
    auto free = free_bytes(dir_);
    if (!free || *free < 2 * reserve_bytes_) return false;
    int fd = ::open(reserve_path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        log::warn("cannot create %s: %s", reserve_path_.c_str(), std::strerror(errno));
        return true; // no reserve, but nothing says the disk is full
    }
    // posix_fallocate allocates the blocks (it writes zeros itself where the file system cannot).
    int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(reserve_bytes_));
    ::close(fd);
    if (rc != 0) {
        ::unlink(reserve_path_.c_str());
        if (rc == ENOSPC) return false;
        log::warn("cannot reserve %s: %s", reserve_path_.c_str(), std::strerror(rc));
    }
    return true;
}

bool DiskSpace::on_write_failed() {
    bool freed = ::unlink(reserve_path_.c_str()) == 0;
    enter_full(free_bytes(dir_).value_or(0));
    if (freed) log::warn("freed the reserve %s so that running executions can finish", reserve_path_.c_str());
    return freed;
}

void DiskSpace::enter_full(std::uint64_t free) {
    roomy_until_ = 0;
    if (full_) return;
    full_ = true;
    refused_.clear();
    // Once per spell, not per refused run or failed write.
    log::error("%s", message(free).c_str());
    timer_.start(
        kCheckMs, [this] { check(); }, kCheckMs);
    timer_.unref();
}

void DiskSpace::check() {
    // A commit that waits for space goes first: what was in flight finishes before anything new starts.
    if (!db_.retry_commit()) return;
    if (!make_reserve()) return;
    full_ = false;
    timer_.stop();
    log::info("disk space returned: %s has %llu bytes free; new executions are accepted again", dir_.c_str(),
              static_cast<unsigned long long>(free_bytes(dir_).value_or(0)));
}

Result<void> DiskSpace::admit(const std::string& workflow, bool& first) {
    if (!full_) {
        const std::uint64_t now = uv_now(loop_);
        if (now < roomy_until_) return {};
        // Below one reserve's worth the next commits may not fit: refuse before they fail.
        auto free = free_bytes(dir_);
        if (free && *free >= kRoomy) roomy_until_ = now + kRoomyMs;
        if (!free || *free >= reserve_bytes_) return {};
        enter_full(*free);
    }
    first = refused_.insert(workflow).second;
    return make_error(ErrorCode::unavailable, message(free_bytes(dir_).value_or(0)));
}

} // namespace luaflow::store
