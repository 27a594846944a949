#pragma once
// Reads too large for one loop turn (the inspect document of a 10 000-action execution: 60 ms of
// SQLite and JSON), done on libuv's thread pool through a read-only connection of their own. A job sees
// the store as of the last commit, in one read transaction; the loop only sends what it produced, so a
// large answer no longer holds the control socket, the schedules and every execution (issue 16).
#include "common/result.hpp"

#include <uv.h>

#include <functional>
#include <memory>
#include <string>

namespace luaflow::store {

class Db;

class Reader {
  public:
    // `path`: the database file, which the daemon's own connection has created and migrated.
    Reader(uv_loop_t* loop, std::string path);
    ~Reader();
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;

    // Runs `read` on a pool thread with the reader's connection, inside one read transaction, and then
    // `done` on the loop with what it returned. `read` touches nothing the loop owns. Jobs use the
    // connection one at a time. `done` runs even after the Reader is gone (its caller holds what it
    // needs), but not when the loop is gone.
    using Read = std::function<Result<std::string>(Db& db)>;
    void run(Read read, std::function<void(Result<std::string>)> done);

  private:
    struct Shared;
    uv_loop_t* loop_;
    std::shared_ptr<Shared> shared_;
};

} // namespace luaflow::store
