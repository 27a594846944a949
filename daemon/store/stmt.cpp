#include "daemon/store/stmt.hpp"

#include "common/log.hpp"
#include "daemon/store/db.hpp"

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <unistd.h>

namespace luaflow::store {

void fatal_sql_error(sqlite3* db, int rc, std::string_view sql) {
    // The store is the truth: the daemon cannot act on a change it could not commit. Exiting lets the
    // service manager restart it from the last commit, which loses nothing acknowledged.
    log::error("SQL error %d (%s) while running [%.*s]", rc, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc),
               static_cast<int>(sql.size()), sql.data());
    _exit(70);
}

bool is_disk_full_error(sqlite3* db, int rc) {
    if ((rc & 0xff) == SQLITE_FULL) return true;
    int ext = db ? sqlite3_extended_errcode(db) : rc;
    // A write or a growth of the WAL index that failed for want of space (EDQUOT, ENOSPC on the -shm).
    return ext == SQLITE_FULL || ext == SQLITE_IOERR_WRITE || ext == SQLITE_IOERR_SHMSIZE;
}

Stmt::Stmt(Db* owner, sqlite3* db, const char* sql) : owner_(owner), db_(db), sql_(sql) {
    int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
    if (rc != SQLITE_OK) fatal_sql_error(db, rc, sql);
    parameters_ = sqlite3_bind_parameter_count(stmt_);
}

int Stmt::Use::index(const char* name) {
    for (const auto& [known, i] : s_.indexes_)
        if (known == name) return i;
    int i = sqlite3_bind_parameter_index(s_.stmt_, name);
    if (i == 0) {
        log::error("no such bind parameter %s in [%s]", name, s_.sql_);
        std::abort();
    }
    s_.indexes_.emplace_back(name, i);
    return i;
}

void Stmt::bind_value(sqlite3_stmt* s, int index, const BoundValue& v, sqlite3_destructor_type text_kind) {
    if (const auto* text = std::get_if<std::string>(&v))
        sqlite3_bind_text(s, index, text->data(), static_cast<int>(text->size()), text_kind);
    else if (const auto* i = std::get_if<std::int64_t>(&v))
        sqlite3_bind_int64(s, index, *i);
    else if (const auto* d = std::get_if<double>(&v))
        sqlite3_bind_double(s, index, *d);
    else
        sqlite3_bind_null(s, index);
}

int Stmt::replay(const Bindings& values) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    for (const auto& [index, value] : values)
        bind_value(stmt_, index, value);
    int rc = SQLITE_ROW;
    while (rc == SQLITE_ROW)
        rc = sqlite3_step(stmt_);
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    return rc;
}

Stmt::Use& Stmt::Use::keep_and_bind(int index, BoundValue v) {
    // Room for every parameter at the first: the values never move while SQLite points at them (the
    // journal takes the vector whole, its elements where they are), and ~Use clears the bindings.
    if (bound_.empty()) bound_.reserve(static_cast<std::size_t>(std::max(1, s_.parameters_)));
    if (bound_.size() == bound_.capacity()) {
        // The same parameter bound again past the count (not done today): bind SQLite's own copy.
        bound_.emplace_back(index, std::move(v));
        for (const auto& [i, value] : bound_)
            bind_value(s_.stmt_, i, value);
        return *this;
    }
    bound_.emplace_back(index, std::move(v));
    bind_value(s_.stmt_, index, bound_.back().second, SQLITE_STATIC);
    return *this;
}

Stmt::Use& Stmt::Use::bind(const char* name, std::string&& v) {
    return keep_and_bind(index(name), std::move(v));
}

std::string json_text(const nlohmann::json& v) {
    return v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Stmt::Use& Stmt::Use::bind_json(const char* name, const nlohmann::json& v) {
    return bind(name, json_text(v));
}

Stmt::Use& Stmt::Use::bind(const char* name, std::int64_t v) {
    return keep_and_bind(index(name), v);
}

Stmt::Use& Stmt::Use::bind(const char* name, double v) {
    return keep_and_bind(index(name), v);
}

Stmt::Use& Stmt::Use::bind_null(const char* name) {
    return keep_and_bind(index(name), std::monostate{});
}

bool Stmt::Use::step() {
    int rc = sqlite3_step(s_.stmt_);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE && !stepped_ && s_.owner_ && is_disk_full_error(s_.db_, rc)) {
        // The disk filled under this write. The owner frees room and restores its transaction (what
        // SQLite rolled back of it); then this statement runs again, once.
        s_.owner_->recover_from_full_disk(rc, s_.sql_);
        sqlite3_reset(s_.stmt_);
        sqlite3_clear_bindings(s_.stmt_);
        for (const auto& [index, value] : bound_)
            bind_value(s_.stmt_, index, value);
        rc = sqlite3_step(s_.stmt_);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) fatal_sql_error(s_.db_, rc, s_.sql_);
    if (!stepped_) {
        stepped_ = true;
        // A write inside the turn's transaction is journaled, to be made again if the commit fails
        // for want of space (its first step made the change, RETURNING or not).
        if (s_.owner_ && !sqlite3_stmt_readonly(s_.stmt_)) s_.owner_->journal(s_, std::move(bound_));
    }
    return rc == SQLITE_ROW;
}

void Stmt::Use::run() {
    while (step()) {
    }
}

std::string Stmt::Use::text(int col) const {
    const unsigned char* p = sqlite3_column_text(s_.stmt_, col);
    int n = sqlite3_column_bytes(s_.stmt_, col);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
}

std::optional<std::string> Stmt::Use::opt_text(int col) const {
    if (is_null(col)) return std::nullopt;
    return text(col);
}

std::optional<std::int64_t> Stmt::Use::opt_int64(int col) const {
    if (is_null(col)) return std::nullopt;
    return int64(col);
}

} // namespace luaflow::store
