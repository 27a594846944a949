#pragma once
// The daemon's one SQLite connection (STYLE 2.8), owned by the loop thread.
//
// State changes made during one loop turn share one transaction: the first write opens it
// (BEGIN IMMEDIATE), and flush() commits it before the loop polls again. What must only happen once
// a change is durable (answering a client, starting an action, resuming a waiter) is queued with
// after_commit() and runs right after that commit: commit first, then act.
#include "common/result.hpp"
#include "daemon/store/stmt.hpp"

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <source_location>
#include <string>
#include <unordered_map>
#include <vector>

namespace luaflow::store {

class Db {
  public:
    // Opens (creating) the database file, sets the pragmas and applies pending migrations.
    static Result<std::unique_ptr<Db>> open(const std::string& path);
    ~Db();
    Db(const Db&) = delete;
    Db& operator=(const Db&) = delete;

    // The statement for a static SQL text, prepared on first use and kept.
    Stmt& stmt(const char* static_sql);

    // Opens the turn's write transaction if none is open; remembers where, for messages.
    void write(std::source_location where = std::source_location::current());
    bool in_write() const { return in_write_; }
    // Runs fn once the current changes are committed (at once when nothing is pending).
    void after_commit(std::function<void()> fn);
    // Commits the open transaction and runs the after-commit callbacks; callbacks that write open a new
    // transaction, committed by the next flush. Returns true when more work is pending.
    bool flush();
    bool pending() const { return in_write_ || !after_commit_.empty(); }
    // Called when the first change or callback of a turn is queued (the commit pump arms itself).
    void set_on_pending(std::function<void()> fn) { on_pending_ = std::move(fn); }

    // Plain statements (pragmas, DDL) with no results.
    void exec(const char* sql);
    std::uint64_t commits() const { return commits_; }
    int schema_version() const;
    sqlite3* handle() const { return db_; }

  private:
    Db() = default;
    Result<void> migrate();
    void notify_pending();

    sqlite3* db_ = nullptr;
    std::unordered_map<const char*, std::unique_ptr<Stmt>> stmts_;
    std::vector<std::function<void()>> after_commit_;
    std::function<void()> on_pending_;
    std::source_location began_at_;
    bool in_write_ = false;
    std::uint64_t commits_ = 0;
};

} // namespace luaflow::store
