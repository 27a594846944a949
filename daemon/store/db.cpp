#include "daemon/store/db.hpp"

#include "common/log.hpp"
#include "common/loop_thread.hpp"

#include <cstring>
#include <sstream>
#include <sys/stat.h>

namespace luaflow::store {

extern const char* const kSchemaSql;

namespace {

// Splits schema.sql at its "-- migration N" markers; element i is migration i+1.
std::vector<std::string> migrations() {
    std::vector<std::string> out;
    std::istringstream in(kSchemaSql);
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("-- migration ", 0) == 0) {
            out.emplace_back();
            continue;
        }
        if (!out.empty()) out.back() += line + "\n";
    }
    return out;
}

} // namespace

Result<std::unique_ptr<Db>> Db::open(const std::string& path, Synchronous sync) {
    // No memory statistics (nothing reads them): without them each of SQLite's allocations takes no
    // global mutex. Before the library initialises, which the first open does.
    static const bool configured = [] { return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK; }();
    (void)configured;
    std::unique_ptr<Db> db(new Db());
    int rc = sqlite3_open_v2(path.c_str(), &db->db_,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
        return make_error(ErrorCode::unavailable,
                          "cannot open database " + path + ": " +
                              (db->db_ ? sqlite3_errmsg(db->db_) : sqlite3_errstr(rc)));
    }
    sqlite3_busy_timeout(db->db_, 2000);
    // WAL with synchronous=NORMAL: a commit is in the WAL file before COMMIT returns, so it survives
    // kill -9 of the daemon, which is what SPEC 5 promises; a power loss may cost the last commits.
    // durability = "power" (config): FULL syncs the WAL at each commit, so it survives power loss too.
    char* err = nullptr;
    // auto_vacuum is set before the first table exists (a new file), or takes a VACUUM (an older one); then
    // pruning gives its pages back to the file system (give_back_free_pages) and the file shrinks.
    // journal_size_limit: a WAL that grew in a burst is cut back to 16 MiB when it starts over.
    if (auto r = db->convert_to_incremental_vacuum(path); !r) return r.error();
    std::string pragmas = "PRAGMA journal_mode=WAL; PRAGMA synchronous=";
    pragmas += sync == Synchronous::full ? "FULL" : "NORMAL";
    pragmas += "; PRAGMA journal_size_limit=16777216;";
    if (sqlite3_exec(db->db_, pragmas.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
        std::string msg = err ? err : "unknown error";
        sqlite3_free(err);
        return make_error(ErrorCode::unavailable, "cannot set up database " + path + ": " + msg);
    }
    // Foreign keys are enforced once the schema is current: a migration that rebuilds a table drops the
    // old one, which with them on would delete every row that refers to it (ON DELETE CASCADE).
    if (auto r = db->migrate(); !r) return r.error();
    if (sqlite3_exec(db->db_, "PRAGMA foreign_keys=ON", nullptr, nullptr, &err) != SQLITE_OK) {
        std::string msg = err ? err : "unknown error";
        sqlite3_free(err);
        return make_error(ErrorCode::unavailable, "cannot set up database " + path + ": " + msg);
    }
    // From here on a commit is legal only from commit(): a write made outside the turn's transaction
    // would autocommit by itself, apart from the changes it belongs with and before those are durable.
    sqlite3_commit_hook(db->db_, &Db::on_commit, db.get());
    return db;
}

Result<std::unique_ptr<Db>> Db::open_reader(const std::string& path) {
    std::unique_ptr<Db> db(new Db());
    int rc = sqlite3_open_v2(path.c_str(), &db->db_, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK)
        return make_error(ErrorCode::unavailable,
                          "cannot open database " + path +
                              " to read: " + (db->db_ ? sqlite3_errmsg(db->db_) : sqlite3_errstr(rc)));
    sqlite3_busy_timeout(db->db_, 2000);
    // Its page cache lives as long as the connection: 512 KiB, not SQLite's 2 MiB (the kernel's page
    // cache holds the file anyway).
    sqlite3_exec(db->db_, "PRAGMA cache_size=-512", nullptr, nullptr, nullptr);
    return db;
}

Result<void> Db::begin_read() {
    // BEGIN alone takes no snapshot; the first read does, and every later read of the transaction
    // sees the same one.
    if (int rc = sqlite3_exec(db_, "BEGIN", nullptr, nullptr, nullptr); rc != SQLITE_OK)
        return make_error(ErrorCode::unavailable,
                          std::string("cannot read the store: ") + sqlite3_errmsg(db_));
    return {};
}

void Db::end_read() {
    sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
}

int Db::on_commit(void* self) {
    if (static_cast<Db*>(self)->committing_) return 0;
    log::error("illegal commit attempt: a change outside the turn's write transaction (store writes take "
               "the token Db::write() returns); it is rolled back");
    return 1;
}

Result<void> Db::convert_to_incremental_vacuum(const std::string& path) {
    if (pragma_int("PRAGMA auto_vacuum") == 2) return {}; // set already: nothing to write (or to wait for)
    // A new file takes the mode before its first table; one with tables needs a VACUUM to take it.
    bool fresh = pragma_int("SELECT count(*) FROM sqlite_master") == 0;
    if (!fresh) log::info("%s: converting to auto_vacuum = incremental (once; a VACUUM)", path.c_str());
    char* err = nullptr;
    if (sqlite3_exec(db_,
                     fresh ? "PRAGMA auto_vacuum=INCREMENTAL" : "PRAGMA auto_vacuum=INCREMENTAL; VACUUM;",
                     nullptr, nullptr, &err) != SQLITE_OK) {
        std::string msg = err ? err : "unknown error";
        sqlite3_free(err);
        return make_error(ErrorCode::unavailable,
                          "cannot convert " + path + " to incremental vacuum: " + msg);
    }
    return {};
}

std::int64_t Db::pragma_int(const char* sql) const {
    sqlite3_stmt* s = nullptr;
    sqlite3_prepare_v2(db_, sql, -1, &s, nullptr);
    std::int64_t v = s && sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_finalize(s);
    return v;
}

std::int64_t Db::file_bytes() const {
    const char* file = sqlite3_db_filename(db_, "main");
    if (!file || !*file) return 0;
    std::int64_t total = 0;
    struct stat st {};
    for (const std::string& f : {std::string(file), std::string(file) + "-wal"})
        if (::stat(f.c_str(), &st) == 0) total += st.st_size;
    return total;
}

int Db::synchronous() const {
    return static_cast<int>(pragma_int("PRAGMA synchronous"));
}

std::int64_t Db::give_back_free_pages(WriteTx&, int pages) {
    std::string sql = "PRAGMA incremental_vacuum(" + std::to_string(pages) + ")";
    sqlite3_stmt* s = nullptr;
    sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr);
    while (s && sqlite3_step(s) == SQLITE_ROW) {
    }
    sqlite3_finalize(s);
    return pragma_int("PRAGMA freelist_count");
}

Db::~Db() {
    if (in_write_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    stmts_.clear();
    sqlite3_close_v2(db_);
}

int Db::schema_version() const {
    sqlite3_stmt* s = nullptr;
    sqlite3_prepare_v2(db_, "PRAGMA user_version", -1, &s, nullptr);
    int v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
    sqlite3_finalize(s);
    return v;
}

Result<void> Db::migrate() {
    std::vector<std::string> all = migrations();
    int have = schema_version();
    if (have > static_cast<int>(all.size())) {
        return make_error(ErrorCode::unavailable, "database schema version " + std::to_string(have) +
                                                      " is newer than this luaflowd knows (" +
                                                      std::to_string(all.size()) + ")");
    }
    if (have == static_cast<int>(all.size())) return {};
    // All pending migrations in one transaction: a crash mid-way leaves the old schema intact.
    std::string script = "BEGIN IMMEDIATE;\n";
    for (size_t i = static_cast<size_t>(have); i < all.size(); ++i)
        script += all[i];
    script += "PRAGMA user_version=" + std::to_string(all.size()) + ";\nCOMMIT;\n";
    char* err = nullptr;
    if (sqlite3_exec(db_, script.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
        std::string msg = err ? err : "unknown error";
        sqlite3_free(err);
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        return make_error(ErrorCode::internal, "schema migration failed: " + msg);
    }
    return {};
}

Stmt& Db::stmt(const char* static_sql) {
    auto it = stmts_.find(static_sql);
    if (it != stmts_.end()) return *it->second;
    auto [pos, inserted] = stmts_.emplace(static_sql, std::make_unique<Stmt>(this, db_, static_sql));
    return *pos->second;
}

void Db::exec(const char* sql) {
    // A plain statement commits by itself when no transaction is open: visibly so, at its call.
    bool was = committing_;
    committing_ = true;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
    committing_ = was;
    if (rc != SQLITE_OK) fatal_sql_error(db_, rc, sql);
}

void Db::notify_pending() {
    if (on_pending_) on_pending_();
}

WriteTx& Db::write(std::source_location where) {
    assert_on_loop_thread();
    if (in_write_) return tx_;
    // Prepared once: sqlite3_exec would parse it anew, and the parser's large allocation made glibc
    // consolidate its free lists on every turn that writes (seen in perf at each schedule fire).
    Stmt::Use(stmt("BEGIN IMMEDIATE")).run();
    in_write_ = true;
    began_at_ = where;
    notify_pending();
    return tx_;
}

void Db::after_commit(std::function<void()> fn) {
    if (!in_write_) {
        fn();
        return;
    }
    after_commit_.push_back(std::move(fn));
    notify_pending();
}

void Db::journal(Stmt& s, Bindings values) {
    if (in_write_) journal_.push_back({&s, std::move(values)});
}

int Db::restore() {
    int rc = sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return rc;
    // The same writes from the same committed state, by the only writer: the same changes, row ids too.
    for (const JournalEntry& e : journal_) {
        rc = e.stmt->replay(e.values);
        if (rc != SQLITE_DONE) {
            if (!is_disk_full_error(db_, rc)) fatal_sql_error(db_, rc, e.stmt->sql());
            sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
            return rc;
        }
    }
    return SQLITE_OK;
}

void Db::recover_from_full_disk(int rc, const char* sql) {
    bool freed = on_disk_full_ && on_disk_full_();
    // Dirty pages stay in memory until the commit instead of spilling into the WAL mid-transaction,
    // which needs the space there is not.
    sqlite3_exec(db_, "PRAGMA cache_spill=OFF", nullptr, nullptr, nullptr);
    if (!in_write_ || !sqlite3_get_autocommit(db_)) {
        // Only the statement was undone (or there was no transaction): it may run again as it is.
        if (freed || in_write_) return;
    } else if (restore() == SQLITE_OK) {
        return;
    }
    log::error("a write failed for want of space and none could be freed");
    fatal_sql_error(db_, rc, sql);
}

bool Db::commit() {
    committing_ = true;
    struct Done {
        bool& flag;
        ~Done() { flag = false; }
    } done{committing_};
    sqlite3_stmt* c = stmt("COMMIT").handle();
    int rc = sqlite3_step(c);
    sqlite3_reset(c);
    if (rc == SQLITE_DONE) {
        in_write_ = false;
        journal_.clear();
        ++commits_;
        return true;
    }
    std::string where = std::string(began_at_.file_name()) + ":" + std::to_string(began_at_.line());
    if (!is_disk_full_error(db_, rc)) {
        log::error("commit of the transaction begun at %s failed", where.c_str());
        fatal_sql_error(db_, rc, "COMMIT");
    }
    // SQLite rolls a transaction back when its COMMIT fails (sqlite3VdbeHalt). Free room, make the
    // transaction again from its journal, and try once more; if it still does not fit, it stays open
    // (in memory) until retry_commit() finds the space.
    if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    bool freed = on_disk_full_ && on_disk_full_();
    sqlite3_exec(db_, "PRAGMA cache_spill=OFF", nullptr, nullptr, nullptr);
    if (restore() != SQLITE_OK) {
        log::error("the transaction begun at %s cannot be restored for want of space", where.c_str());
        fatal_sql_error(db_, rc, "COMMIT");
    }
    if (freed) {
        rc = sqlite3_step(c);
        sqlite3_reset(c);
        if (rc == SQLITE_DONE) {
            in_write_ = false;
            journal_.clear();
            ++commits_;
            return true;
        }
        if (!is_disk_full_error(db_, rc)) fatal_sql_error(db_, rc, "COMMIT");
        if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        if (restore() != SQLITE_OK) fatal_sql_error(db_, rc, "COMMIT");
    }
    if (!commit_blocked_)
        log::warn("the changes since %s wait for space in the state directory before they are committed",
                  where.c_str());
    commit_blocked_ = true;
    return false;
}

bool Db::retry_commit() {
    if (!commit_blocked_) return true;
    commit_blocked_ = false;
    flush();
    if (!commit_blocked_) notify_pending(); // what the callbacks wrote is committed by the pump
    return !commit_blocked_;
}

Result<void> Db::admit_new_work(const std::string& workflow, bool& first) const {
    first = false;
    if (!admission_) return {};
    return admission_(workflow, first);
}

void Db::hold_commits(bool held) {
    held_ = held;
    if (!held && (in_write_ || !after_commit_.empty())) notify_pending();
}

void Db::begin_again() {
    if (!in_write_ || commit_blocked_) return;
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    if (int rc = restore(); rc != SQLITE_OK) recover_from_full_disk(rc, "BEGIN IMMEDIATE");
}

bool Db::flush() {
    if (commit_blocked_ || held_) return false;
    if (in_write_) {
        while (!before_commit_.empty()) { // one may queue another
            std::vector<std::function<void()>> fns;
            fns.swap(before_commit_);
            for (auto& fn : fns)
                fn();
        }
        if (!commit()) return false;
    }
    // Every callback waiting for this commit runs now. What they write goes into the next transaction,
    // and what they queue waits for that one's commit.
    std::vector<std::function<void()>> callbacks;
    callbacks.swap(after_commit_);
    for (auto& fn : callbacks)
        fn();
    return pending();
}

} // namespace luaflow::store
