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

class Db;

// The turn's write transaction as a token. Db::write() opens the transaction and hands the token out;
// every store function that changes state takes it, so a call site shows which writes commit
// together (`auto& tx = db.write();`). The commit is the CommitPump's, once per loop turn: a change
// made without the token would commit on its own, and the commit hook refuses it (Db::open).
class WriteTx {
  public:
    WriteTx(const WriteTx&) = delete;
    WriteTx& operator=(const WriteTx&) = delete;
    Db& db() const { return db_; }

  private:
    friend class Db;
    explicit WriteTx(Db& db) : db_(db) {}
    Db& db_;
};

class Db {
  public:
    // What a commit waits for: the WAL written (it survives kill -9), or the WAL synced to the disk (it
    // survives power loss too, one flush per commit): SQLite's synchronous NORMAL and FULL in WAL mode.
    enum class Synchronous { normal, full };
    // Opens (creating) the database file, sets the pragmas and applies pending migrations. A new file is
    // made with auto_vacuum = INCREMENTAL; an older one is converted (a VACUUM, once).
    static Result<std::unique_ptr<Db>> open(const std::string& path, Synchronous sync = Synchronous::normal);
    // The database's size on disk: its file and its write-ahead log.
    std::int64_t file_bytes() const;
    // PRAGMA synchronous as SQLite reports it: 1 normal, 2 full.
    int synchronous() const;
    // Gives back up to `pages` free pages to the file system (PRAGMA incremental_vacuum) in `tx`, the
    // file shrinking at its commit; how many the file still has free after it.
    std::int64_t give_back_free_pages(WriteTx& tx, int pages);
    // A read-only connection to a database open() has set up, for a thread of the pool (store/reader):
    // it never writes, so it has no write transaction, journal or commit hook.
    static Result<std::unique_ptr<Db>> open_reader(const std::string& path);
    // A read transaction on a reader: its reads see one commit, whatever commits meanwhile.
    Result<void> begin_read();
    void end_read();
    ~Db();
    Db(const Db&) = delete;
    Db& operator=(const Db&) = delete;

    // The statement for a static SQL text, prepared on first use and kept.
    Stmt& stmt(const char* static_sql);

    // Opens the turn's write transaction if none is open (remembering where, for messages) and hands
    // out its token.
    WriteTx& write(std::source_location where = std::source_location::current());
    bool in_write() const { return in_write_; }
    // Runs fn once the current changes are committed (at once when nothing is pending).
    void after_commit(std::function<void()> fn);
    // Runs fn in the open transaction just before it is committed (writes that a later change of the
    // same turn may make unneeded). Needs a write transaction open.
    void before_commit(std::function<void()> fn) { before_commit_.push_back(std::move(fn)); }
    // Commits the open transaction and runs the after-commit callbacks; callbacks that write open a new
    // transaction, committed by the next flush. Returns true when more work is pending.
    bool flush();
    bool pending() const { return !commit_blocked_ && !held_ && (in_write_ || !after_commit_.empty()); }
    // While held, the open transaction is not committed and its after-commit callbacks wait (the
    // Checkpointer copies the last of the WAL meanwhile); released, the pump commits as before.
    void hold_commits(bool held);
    // Begins the open transaction again from the journal of its writes, at the database's current
    // state (after a checkpoint copied every frame: its first write then starts the WAL over).
    void begin_again();
    // Called when the first change or callback of a turn is queued (the commit pump arms itself).
    void set_on_pending(std::function<void()> fn) { on_pending_ = std::move(fn); }

    // Plain statements (pragmas, DDL) with no results; outside the turn's transaction one commits by
    // itself.
    void exec(const char* sql);

    // A full disk (issue 14, item 15). A write or commit that fails for want of space calls
    // `on_disk_full`, which may free room (the reserve file) and returns whether it did; the
    // transaction is then made again from the journal of its writes and committed. When it still does
    // not fit, it stays open and in memory, its after-commit callbacks wait, and retry_commit() (from a
    // timer) tries again: nothing is acted on before it is durable, and the daemon stays up.
    void set_on_disk_full(std::function<bool()> fn) { on_disk_full_ = std::move(fn); }
    // True while a commit waits for space.
    bool commit_blocked() const { return commit_blocked_; }
    // Tries the waiting commit again (then runs what waited for it); returns true once it is done.
    bool retry_commit();
    // Whether new work (an execution) may start: refused while the state directory's disk is full.
    // `first` is set when this is the first refusal for `workflow` in this spell of a full disk.
    void set_admission(std::function<Result<void>(const std::string& workflow, bool& first)> fn) {
        admission_ = std::move(fn);
    }
    Result<void> admit_new_work(const std::string& workflow, bool& first) const;

    // For Stmt: a write made in the open transaction, to run again after a failed commit.
    void journal(Stmt& stmt, Bindings values);
    // For Stmt: a write failed for want of space; frees room and restores the transaction (or exits
    // when it cannot: a write the daemon cannot make is not one it may ignore).
    void recover_from_full_disk(int rc, const char* sql);
    std::uint64_t commits() const { return commits_; }
    int schema_version() const;
    std::int64_t pragma_int(const char* sql) const;
    Result<void> convert_to_incremental_vacuum(const std::string& path);
    sqlite3* handle() const { return db_; }

  private:
    struct JournalEntry {
        Stmt* stmt;
        Bindings values;
    };
    Db() = default;
    Result<void> migrate();
    // SQLite's commit hook: only Db::commit() may commit (Fossil's "illegal commit attempt").
    static int on_commit(void* self);
    void notify_pending();
    bool commit();
    // After SQLite rolled the transaction back: begins it again and replays the journal into it.
    int restore();

    sqlite3* db_ = nullptr;
    std::unordered_map<const char*, std::unique_ptr<Stmt>> stmts_;
    std::vector<std::function<void()>> after_commit_;
    std::vector<std::function<void()>> before_commit_;
    std::function<void()> on_pending_;
    std::source_location began_at_;
    WriteTx tx_{*this};
    bool in_write_ = false;
    bool committing_ = false; // inside commit(): the one moment a commit is legal
    bool commit_blocked_ = false;
    bool held_ = false;
    std::vector<JournalEntry> journal_;
    std::function<bool()> on_disk_full_;
    std::function<Result<void>(const std::string&, bool&)> admission_;
    std::uint64_t commits_ = 0;
};

} // namespace luaflow::store
