#include "daemon/store/retention_pruner.hpp"

#include "common/log.hpp"
#include "daemon/store/events.hpp"
#include "daemon/store/notifications.hpp"
#include "daemon/store/retention.hpp"
#include "loop/thread_pool.hpp"

#include <filesystem>
#include <memory>

namespace luaflow::store {

namespace {

constexpr int kBatch = 200;
constexpr int kVacuumPages = 2000; // 8 MiB of 4 KiB pages a turn
constexpr std::uint64_t kHourMs = 3'600'000;

// Removing directory trees blocks on the disk: it runs on libuv's thread pool with plain values.
void remove_in_pool(uv_loop_t* loop, const std::vector<std::string>& paths) {
    auto removed = loop::run_in_pool(
        loop,
        [paths] {
            for (const std::string& p : paths) {
                std::error_code ec;
                std::filesystem::remove_all(p, ec);
            }
        },
        nullptr);
    if (!removed)
        log::warn("%s: %zu scratch director%s of pruned executions left in place",
                  removed.error().message.c_str(), paths.size(), paths.size() == 1 ? "y" : "ies");
}

} // namespace

RetentionPruner::RetentionPruner(uv_loop_t* loop, Db& db, std::string scratch_root)
    : loop_(loop), db_(db), scratch_root_(std::move(scratch_root)), hourly_(loop), next_batch_(loop) {}

void RetentionPruner::configure(int days, int keep_per_workflow) {
    days_ = days;
    keep_ = keep_per_workflow;
}

void RetentionPruner::start() {
    hourly_.start(
        0, [this] { step(); }, kHourMs);
    hourly_.unref();
}

void RetentionPruner::step() {
    UnixMillis cutoff = now_unix_ms() - static_cast<UnixMillis>(days_) * 86'400'000;
    // Workflow events (dropped occurrences) age out with the executions; an execution's go with it.
    WriteTx& tx = db_.write();
    prune_events(tx, cutoff);
    prune_notifications(tx, cutoff);
    std::vector<std::string> ids = prune_executions(tx, cutoff, keep_, kBatch);
    if (ids.empty()) {
        give_back();
        return;
    }
    log::info("retention: pruned %zu execution(s) older than %d days", ids.size(), days_);
    std::vector<std::string> dirs;
    for (const std::string& id : ids)
        dirs.push_back(scratch_root_ + "/" + id);
    remove_in_pool(loop_, std::move(dirs));
    if (ids.size() == static_cast<size_t>(kBatch)) {
        // More to do: the next batch on a later turn, after this one is committed.
        next_batch_.start(0, [this] { step(); });
        next_batch_.unref();
    }
}

// What pruning freed goes back to the file system, a chunk per turn (auto_vacuum = INCREMENTAL): the
// file shrinks without a VACUUM, and no turn holds the loop long.
void RetentionPruner::give_back() {
    std::int64_t left = db_.give_back_free_pages(db_.write(), kVacuumPages);
    if (left == 0) return;
    next_batch_.start(0, [this] { give_back(); });
    next_batch_.unref();
}

} // namespace luaflow::store
