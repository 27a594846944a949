#pragma once
// Moves WAL checkpoints off the loop thread. SQLite's automatic checkpoint runs inside the COMMIT that
// crosses the threshold and, with synchronous=NORMAL, syncs the files there: on the loop that stalls
// everything. Instead a WAL hook on the daemon's connection notices the WAL growing and a job on
// libuv's thread pool checkpoints it through a connection of its own (PASSIVE: it never waits on the
// writer). bench/engine_bench.py shows the difference in executions per second.
//
// A passive checkpoint alone never lets the WAL start over while commits keep coming: SQLite reuses
// the file from its start only for a transaction that begins when every frame is in the database, and
// under steady load some commit always lands during the checkpoint (the WAL grew past 100 MB in
// engine_bench). So after the bulk of the WAL is copied, commits are held for a second, short
// checkpoint of what came meanwhile, and the open transaction is begun again from its journal: its
// first write then starts the WAL over (issue 16).
#include "loop/uv_handle.hpp"

#include <sqlite3.h>
#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>

namespace luaflow::store {

class Db;

class Checkpointer {
  public:
    // Installs the WAL hook on db; `path` is the database file the pool's connection opens.
    // `first_hold_ms`: the first limit on a catch-up's hold (tests make it long, to be deterministic);
    // `pages_before_checkpoint`: tests make it small, to be quick.
    Checkpointer(uv_loop_t* loop, Db& db, std::string path, std::uint64_t first_hold_ms = kFirstHoldMs,
                 int pages_before_checkpoint = kPagesBeforeCheckpoint);
    ~Checkpointer();
    Checkpointer(const Checkpointer&) = delete;
    Checkpointer& operator=(const Checkpointer&) = delete;

    // WAL pages after which a checkpoint is started (SQLite's own default is 1000). Each start-over begins
    // the open transaction again from its journal, a large one under load: at 1000 pages that replay was
    // 8 % of the loop's time with 20 000 pipelined runs (bench/engine_bench.py; 4,900 -> 5,500/s at 4000).
    // 16 MiB is also journal_size_limit, to which a WAL a burst grew is cut back.
    static constexpr int kPagesBeforeCheckpoint = 4000;
    // Commits wait at most this long for the catch-up checkpoint (the pool may be busy, the disk slow);
    // then they go on, and the next try waits twice as long, up to kMaxHoldMs: on a slow disk the WAL
    // still starts over, at the price of one longer wait.
    static constexpr std::uint64_t kFirstHoldMs = 50;
    static constexpr std::uint64_t kMaxHoldMs = 2000;

    // WALs started over since the daemon started, and catch-ups that took too long (for tests).
    std::uint64_t restarts() const { return restarts_; }
    std::uint64_t gave_up() const { return gave_up_; }
    // A checkpoint job is out, or commits are held for one.
    bool busy() const;

  private:
    struct Shared;
    enum class Phase { bulk, catch_up };
    static int on_wal(void* self, sqlite3* db, const char* name, int pages);
    void start_job(Phase phase);
    void on_job_done(Phase phase, int result, int wal_frames, int copied_frames);
    void release();

    uv_loop_t* loop_;
    Db& db_;
    std::shared_ptr<Shared> shared_;
    loop::Timer hold_limit_;
    bool holding_ = false;
    std::uint64_t first_hold_ms_;
    int pages_before_checkpoint_;
    std::uint64_t hold_ms_;
    std::uint64_t restarts_ = 0;
    std::uint64_t gave_up_ = 0;
};

} // namespace luaflow::store
