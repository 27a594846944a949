#pragma once
// Moves WAL checkpoints off the loop thread. SQLite's automatic checkpoint runs inside the COMMIT that
// crosses the threshold and, with synchronous=NORMAL, syncs the files there: on the loop that stalls
// everything. Instead a WAL hook on the daemon's connection notices the WAL growing and a job on
// libuv's thread pool checkpoints it through a connection of its own (PASSIVE: it never waits on the
// writer). bench/engine_bench.py shows the difference in executions per second.
#include <sqlite3.h>
#include <uv.h>

#include <memory>
#include <string>

namespace luaflow::store {

class Db;

class Checkpointer {
  public:
    // Installs the WAL hook on db; `path` is the database file the pool's connection opens.
    Checkpointer(uv_loop_t* loop, Db& db, std::string path);
    ~Checkpointer();
    Checkpointer(const Checkpointer&) = delete;
    Checkpointer& operator=(const Checkpointer&) = delete;

    // WAL pages after which a checkpoint is started (SQLite's own default is 1000).
    static constexpr int kPagesBeforeCheckpoint = 1000;

  private:
    struct Shared;
    static int on_wal(void* self, sqlite3* db, const char* name, int pages);
    void start_job();

    uv_loop_t* loop_;
    Db& db_;
    std::shared_ptr<Shared> shared_;
};

} // namespace luaflow::store
