#pragma once
// A prepared statement, prepared once (SQLITE_PREPARE_PERSISTENT) and finalized in its destructor.
// Each use goes through Stmt::Use, which resets and clears the bindings when it ends (Fossil db_reset).
#include <nlohmann/json_fwd.hpp>
#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace luaflow::store {

class Db;

// SQL errors are bugs or a broken disk; they carry the statement (Fossil db_check_result).
[[noreturn]] void fatal_sql_error(sqlite3* db, int rc, std::string_view sql);

// A full disk (SQLITE_FULL, a write that failed for want of space): not a bug, the daemon waits it out
// (issue 14, item 15). Reads the connection's extended code.
bool is_disk_full_error(sqlite3* db, int rc);

// A value bound to a parameter, kept so that a write can be run again (Db's journal).
using BoundValue = std::variant<std::monostate, std::int64_t, double, std::string>;
using Bindings = std::vector<std::pair<int, BoundValue>>;

// A JSON column's text. Every door checks that strings are UTF-8; one that is not anyway is written
// with U+FFFD in its place rather than end the daemon (nlohmann's dump throws).
std::string json_text(const nlohmann::json& v);

class Stmt {
  public:
    // `owner` journals the writes made inside its transactions and recovers from a full disk.
    Stmt(Db* owner, sqlite3* db, const char* sql);
    ~Stmt() { sqlite3_finalize(stmt_); }
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;

    class Use {
      public:
        explicit Use(Stmt& s) : s_(s) {}
        ~Use() {
            sqlite3_reset(s_.stmt_);
            sqlite3_clear_bindings(s_.stmt_);
        }
        Use(const Use&) = delete;
        Use& operator=(const Use&) = delete;

        Use& bind(const char* name, std::string_view v) { return bind(name, std::string(v)); }
        Use& bind(const char* name, const char* v) { return bind(name, std::string(v)); }
        Use& bind(const char* name, const std::string& v) { return bind(name, std::string(v)); }
        Use& bind(const char* name, std::string&& v);
        Use& bind(const char* name, std::int64_t v);
        // A JSON column's text (json_text).
        Use& bind_json(const char* name, const nlohmann::json& v);
        Use& bind(const char* name, int v) { return bind(name, static_cast<std::int64_t>(v)); }
        Use& bind(const char* name, double v);
        Use& bind_null(const char* name);
        template <class T> Use& bind(const char* name, const std::optional<T>& v) {
            return v ? bind(name, *v) : bind_null(name);
        }

        // Steps once: true with a row, false when done.
        bool step();
        // Steps to completion, for statements without rows.
        void run();

        bool is_null(int col) const { return sqlite3_column_type(s_.stmt_, col) == SQLITE_NULL; }
        std::int64_t int64(int col) const { return sqlite3_column_int64(s_.stmt_, col); }
        std::string text(int col) const;
        std::optional<std::string> opt_text(int col) const;
        std::optional<std::int64_t> opt_int64(int col) const;

      private:
        int index(const char* name);
        // Keeps the value (the journal's copy) and binds it from there, without a copy of SQLite's own.
        Use& keep_and_bind(int index, BoundValue v);
        Stmt& s_;
        Bindings bound_;
        bool stepped_ = false;
    };

    // Binds `values` and steps to the end, for a replay of the journal; returns SQLite's code.
    int replay(const Bindings& values);
    const char* sql() const { return sql_; }

    // For a caller that reports a failure itself (COMMIT): step and reset it by hand.
    sqlite3_stmt* handle() const { return stmt_; }

  private:
    // SQLITE_STATIC for a text the caller keeps, unchanged and in place, until the bindings are cleared.
    static void bind_value(sqlite3_stmt* s, int index, const BoundValue& v,
                           sqlite3_destructor_type text = SQLITE_TRANSIENT);

    Db* owner_;
    sqlite3* db_;
    sqlite3_stmt* stmt_ = nullptr;
    const char* sql_;
    int parameters_ = 0;
    // Parameter indexes by the address of the name's literal: each call site binds by the same one, and
    // sqlite3_bind_parameter_index compares every name (1 % of a run's instructions).
    std::vector<std::pair<const char*, int>> indexes_;
};

} // namespace luaflow::store
