#include "daemon/store/stmt.hpp"

#include "common/log.hpp"

#include <cstdlib>
#include <unistd.h>

namespace luaflow::store {

void fatal_sql_error(sqlite3* db, int rc, std::string_view sql) {
    // The store is the truth: the daemon cannot act on a change it could not commit. Exiting lets the
    // service manager restart it from the last commit, which loses nothing acknowledged.
    log::error("SQL error %d (%s) while running [%.*s]", rc, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc),
               static_cast<int>(sql.size()), sql.data());
    _exit(70);
}

Stmt::Stmt(sqlite3* db, const char* sql) : db_(db), sql_(sql) {
    int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
    if (rc != SQLITE_OK) fatal_sql_error(db, rc, sql);
}

int Stmt::Use::index(const char* name) {
    int i = sqlite3_bind_parameter_index(s_.stmt_, name);
    if (i == 0) {
        log::error("no such bind parameter %s in [%s]", name, s_.sql_);
        std::abort();
    }
    return i;
}

Stmt::Use& Stmt::Use::bind(const char* name, std::string_view v) {
    sqlite3_bind_text(s_.stmt_, index(name), v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
}

Stmt::Use& Stmt::Use::bind(const char* name, std::int64_t v) {
    sqlite3_bind_int64(s_.stmt_, index(name), v);
    return *this;
}

Stmt::Use& Stmt::Use::bind(const char* name, double v) {
    sqlite3_bind_double(s_.stmt_, index(name), v);
    return *this;
}

Stmt::Use& Stmt::Use::bind_null(const char* name) {
    sqlite3_bind_null(s_.stmt_, index(name));
    return *this;
}

bool Stmt::Use::step() {
    int rc = sqlite3_step(s_.stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fatal_sql_error(s_.db_, rc, s_.sql_);
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
