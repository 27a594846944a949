#pragma once
// A full disk under the state directory (issue 14, item 15): the daemon stays up, refuses new
// executions with a clear error, says so once in the log, and carries on when space returns.
//
// A reserve file (STATE/reserve, up to 8 MiB) is kept while there is room. The first write that fails
// for want of space frees it, so that what is in flight can commit and finish; it is made again once
// space returns. While the disk is full, a timer checks every second for space and retries a commit
// that waits for it (Db::retry_commit).
#include "common/result.hpp"
#include "daemon/store/db.hpp"
#include "loop/uv_handle.hpp"

#include <cstdint>
#include <optional>
#include <set>
#include <string>

namespace luaflow::store {

// Free bytes for an unprivileged writer on the file system of `dir`, or nothing when statvfs fails.
std::optional<std::uint64_t> free_bytes(const std::string& dir);

class DiskSpace {
  public:
    // Hooks itself into `db` (its failed writes, its admission of new work) until destroyed.
    DiskSpace(uv_loop_t* loop, Db& db, std::string state_dir);
    ~DiskSpace();
    DiskSpace(const DiskSpace&) = delete;
    DiskSpace& operator=(const DiskSpace&) = delete;

    // Makes the reserve file when there is room for it (at start).
    void start();
    // Ok, or the error that refuses a new execution while the disk is full.
    Result<void> admit(const std::string& workflow, bool& first);
    bool full() const { return full_; }
    std::uint64_t reserve_bytes() const { return reserve_bytes_; }

  private:
    bool on_write_failed();
    void enter_full(std::uint64_t free);
    void check();
    bool make_reserve();
    std::string message(std::uint64_t free) const;

    Db& db_;
    uv_loop_t* loop_;
    std::string dir_;
    std::string reserve_path_;
    std::uint64_t reserve_bytes_ = 0;
    bool full_ = false;
    std::uint64_t roomy_until_ = 0; // loop time until which the last reading stands (kRoomy)
    std::set<std::string> refused_; // workflows refused in this spell, for their one log line
    loop::Timer timer_;
};

} // namespace luaflow::store
