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

constexpr int kBatch = 10;                       // executions deleted in a step (with their actions, logs)
constexpr int kScan = 200;                       // executions read in a step
constexpr std::uint64_t kTurnBudgetNs = 150'000; // steps in one loop turn, at most
constexpr int kVacuumPages = 500;                // 2 MiB of 4 KiB pages a turn
constexpr std::uint64_t kHourMs = 3'600'000;
constexpr std::uint64_t kPauseMs = 5; // looks again this much later while a checkpoint is out

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

RetentionPruner::RetentionPruner(uv_loop_t* loop, Db& db, std::string scratch_root,
                                 std::function<bool()> store_busy)
    : loop_(loop), db_(db), scratch_root_(std::move(scratch_root)), store_busy_(std::move(store_busy)),
      hourly_(loop), stepper_(loop), paused_(loop) {}

bool RetentionPruner::store_free(void (RetentionPruner::*resume)()) {
    if (!store_busy_ || !store_busy_()) return true;
    stepper_.stop();
    paused_.start(kPauseMs, [this, resume] { stepper_.start([this, resume] { (this->*resume)(); }); });
    return false;
}

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
    if (!store_free(&RetentionPruner::step)) return;
    if (!pass_) {
        UnixMillis cutoff = now_unix_ms() - static_cast<UnixMillis>(days_) * 86'400'000;
        // Workflow events (dropped occurrences) and sent notifications age out with the executions.
        WriteTx& tx = db_.write();
        prune_events(tx, cutoff);
        prune_notifications(tx, cutoff);
        pass_.emplace(cutoff, keep_);
        pruned_ = 0;
        // One step per loop turn (an idle handle: the turn's commit and I/O come between two steps; a
        // timer re-armed from its callback was seen to run every step in one turn, the socket unanswered).
        stepper_.start([this] { step(); });
    }
    // Small steps for at most kTurnBudgetNs: deleting an execution with its actions and logs costs from
    // 0.1 ms, so a fixed batch would hold a turn as long as its executions' logs are big.
    std::vector<std::string> ids;
    std::uint64_t started = uv_hrtime();
    do {
        for (std::string& id : pass_->step(db_.write(), kBatch, kScan))
            ids.push_back(std::move(id));
    } while (!pass_->done() && uv_hrtime() - started < kTurnBudgetNs);
    pruned_ += ids.size();
    if (!ids.empty()) {
        std::vector<std::string> dirs;
        for (const std::string& id : ids)
            dirs.push_back(scratch_root_ + "/" + id);
        remove_in_pool(loop_, std::move(dirs));
    }
    if (!pass_->done()) return;
    pass_.reset();
    if (pruned_)
        log::info(
            "retention: pruned %zu execution(s) older than %d days beyond the newest %d of their workflow",
            pruned_, days_, keep_);
    stepper_.start([this] { give_back(); });
}

// What pruning freed goes back to the file system, a chunk per turn (auto_vacuum = INCREMENTAL): the
// file shrinks without a VACUUM, and no turn holds the loop long.
void RetentionPruner::give_back() {
    if (!store_free(&RetentionPruner::give_back)) return;
    if (db_.give_back_free_pages(db_.write(), kVacuumPages) == 0) stepper_.stop();
}

} // namespace luaflow::store
