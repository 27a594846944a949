// Prepared statements (store/stmt): named binds of each type, the column readers, the reset that ends
// each use, the journal's replay, and the errors that name the statement (Fossil db_check_result).
// The full disk's recovery is db_test's.
#include "daemon/store/db.hpp"
#include "daemon/store/stmt.hpp"
#include "tests/unit/support/in_child.hpp"
#include "tests/unit/support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <sqlite3.h>

#include <csignal>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <utility>
#include <vector>

using namespace luaflow;
using store::Stmt;
using testing::Death;
using testing::in_child;

namespace {

struct Fixture {
    testing::TempDir dir;
    std::unique_ptr<store::Db> db;
    Fixture() {
        db = std::move(store::Db::open(dir.file("luaflow.db")).value());
        db->exec("CREATE TABLE t (x INTEGER NOT NULL, y TEXT)");
    }
};

// What SQLite made of a value bound to :v: its type and its SQL literal.
std::pair<std::string, std::string> bound(store::Db& db, const std::function<void(Stmt::Use&)>& bind) {
    Stmt::Use q(db.stmt("SELECT typeof(:v), quote(:v)"));
    bind(q);
    REQUIRE(q.step());
    return {q.text(0), q.text(1)};
}

} // namespace

TEST_CASE("each bind reaches SQLite as its own type: text, integer, real and null") {
    Fixture f;
    store::Db& db = *f.db;
    CHECK(bound(db, [](Stmt::Use& q) { q.bind(":v", std::string("it's")); }) ==
          std::pair<std::string, std::string>{"text", "'it''s'"});
    CHECK(bound(db, [](Stmt::Use& q) { q.bind(":v", "c-string"); }).first == "text");
    CHECK(bound(db, [](Stmt::Use& q) { q.bind(":v", std::string_view("view")); }).second == "'view'");
    CHECK(bound(db, [](Stmt::Use& q) { q.bind(":v", std::numeric_limits<std::int64_t>::max()); }) ==
          std::pair<std::string, std::string>{"integer", "9223372036854775807"});
    CHECK(bound(db, [](Stmt::Use& q) { q.bind(":v", -7); }) ==
          std::pair<std::string, std::string>{"integer", "-7"});
    CHECK(bound(db, [](Stmt::Use& q) { q.bind(":v", 1.5); }) ==
          std::pair<std::string, std::string>{"real", "1.5"});
    CHECK(bound(db, [](Stmt::Use& q) { q.bind_null(":v"); }) ==
          std::pair<std::string, std::string>{"null", "NULL"});
    // An optional binds its value, or NULL when empty.
    CHECK(bound(db, [](Stmt::Use& q) { q.bind(":v", std::optional<std::string>("x")); }) ==
          std::pair<std::string, std::string>{"text", "'x'"});
    CHECK(bound(db, [](Stmt::Use& q) { q.bind(":v", std::optional<std::int64_t>(42)); }) ==
          std::pair<std::string, std::string>{"integer", "42"});
    CHECK(bound(db, [](Stmt::Use& q) { q.bind(":v", std::optional<std::int64_t>()); }).first == "null");
}

TEST_CASE("text keeps its length: embedded NUL bytes and UTF-8 go in and come out whole") {
    Fixture f;
    const std::string value("a\0b\xc3\xa9z", 6);
    f.db->write(); // the writes join the turn's transaction, as the store's do
    store::Stmt::Use(f.db->stmt("INSERT INTO t (x, y) VALUES (1, :y)")).bind(":y", value).run();
    Stmt::Use q(f.db->stmt("SELECT y, length(CAST(y AS BLOB)) FROM t"));
    REQUIRE(q.step());
    CHECK(q.text(0) == value);
    CHECK(q.int64(1) == 6);
}

TEST_CASE("a NULL column reads as null: the optional readers give nothing and text gives an empty string") {
    Fixture f;
    Stmt::Use q(f.db->stmt("SELECT NULL, 'a', 5, ''"));
    REQUIRE(q.step());
    CHECK(q.is_null(0));
    CHECK(q.opt_text(0) == std::nullopt);
    CHECK(q.opt_int64(0) == std::nullopt);
    CHECK(q.text(0).empty());
    CHECK_FALSE(q.is_null(1));
    CHECK(q.opt_text(1) == std::optional<std::string>("a"));
    CHECK(q.opt_int64(2) == std::optional<std::int64_t>(5));
    // An empty string is a value, not a missing one.
    CHECK_FALSE(q.is_null(3));
    CHECK(q.opt_text(3) == std::optional<std::string>(""));
}

TEST_CASE("step gives each row in turn, then false at the end") {
    Fixture f;
    f.db->write(); // the writes join the turn's transaction, as the store's do
    for (int x : {3, 1, 2})
        store::Stmt::Use(f.db->stmt("INSERT INTO t (x) VALUES (:x)")).bind(":x", x).run();
    Stmt::Use q(f.db->stmt("SELECT x FROM t ORDER BY x"));
    std::vector<std::int64_t> xs;
    while (q.step())
        xs.push_back(q.int64(0));
    CHECK(xs == std::vector<std::int64_t>{1, 2, 3});
}

TEST_CASE("a use that ends resets its statement: the next starts at the first row with no binding left") {
    Fixture f;
    f.db->write(); // the writes join the turn's transaction, as the store's do
    for (int x : {1, 2})
        store::Stmt::Use(f.db->stmt("INSERT INTO t (x) VALUES (:x)")).bind(":x", x).run();
    static const char* const kRows = "SELECT x, :v FROM t ORDER BY x";
    {
        Stmt::Use q(f.db->stmt(kRows));
        q.bind(":v", 5);
        REQUIRE(q.step()); // one row of two read; the use ends mid-way
        CHECK(q.int64(0) == 1);
        CHECK(q.int64(1) == 5);
    }
    Stmt::Use again(f.db->stmt(kRows));
    REQUIRE(again.step());
    CHECK(again.int64(0) == 1); // from the start, not the row after
    CHECK(again.is_null(1));    // the last use's binding is cleared
}

TEST_CASE("the database prepares one statement per SQL text and hands the same one out again") {
    Fixture f;
    static const char* const kSql = "SELECT count(*) FROM t";
    Stmt& first = f.db->stmt(kSql);
    Stmt& second = f.db->stmt(kSql);
    CHECK(&first == &second);
    CHECK(first.handle() == second.handle());
    CHECK(std::string(first.sql()) == kSql);
    static const char* const kOther = "SELECT count(*) FROM t WHERE x > 0";
    CHECK(&f.db->stmt(kOther) != &first);
}

TEST_CASE("a replay binds the saved values by index, runs the statement and returns SQLite's code") {
    Fixture f;
    f.db->write(); // the writes join the turn's transaction, as the store's do
    Stmt& insert = f.db->stmt("INSERT INTO t (x, y) VALUES (:x, :y)");
    CHECK(insert.replay({{1, std::int64_t{5}}, {2, std::string("five")}}) == SQLITE_DONE);
    // A failure is a code to the caller (the journal's restore decides), not the end of the process.
    int rc = insert.replay({{1, std::monostate{}}, {2, std::string("null x")}});
    CHECK((rc & 0xff) == SQLITE_CONSTRAINT);
    // Nothing of the failed replay is left bound: the statement serves the next use as new.
    store::Stmt::Use(insert).bind(":x", 6).run();
    Stmt::Use q(f.db->stmt("SELECT x, y FROM t ORDER BY x"));
    REQUIRE(q.step());
    CHECK(q.int64(0) == 5);
    CHECK(q.text(1) == "five");
    REQUIRE(q.step());
    CHECK(q.int64(0) == 6);
    CHECK(q.is_null(1));
    CHECK_FALSE(q.step());
}

TEST_CASE("a full disk is told apart from the other SQL errors, by its extended code too") {
    CHECK(store::is_disk_full_error(nullptr, SQLITE_FULL));
    CHECK(store::is_disk_full_error(nullptr, SQLITE_IOERR_WRITE));
    CHECK(store::is_disk_full_error(nullptr, SQLITE_IOERR_SHMSIZE));
    CHECK_FALSE(store::is_disk_full_error(nullptr, SQLITE_IOERR_READ));
    CHECK_FALSE(store::is_disk_full_error(nullptr, SQLITE_CONSTRAINT));
    CHECK_FALSE(store::is_disk_full_error(nullptr, SQLITE_BUSY));
    // The real thing: a database that may not grow answers a large write with SQLITE_FULL.
    Fixture f;
    sqlite3_exec(f.db->handle(), "PRAGMA max_page_count = 1", nullptr, nullptr, nullptr);
    f.db->write(); // the writes join the turn's transaction, as the store's do
    int rc = f.db->stmt("INSERT INTO t (x, y) VALUES (:x, :y)")
                 .replay({{1, std::int64_t{1}}, {2, std::string(1 << 20, 'a')}});
    CHECK(store::is_disk_full_error(f.db->handle(), rc));
    int constraint = f.db->stmt("INSERT INTO t (x, y) VALUES (:x, :y)").replay({{2, std::string("no x")}});
    CHECK_FALSE(store::is_disk_full_error(f.db->handle(), constraint));
}

TEST_CASE("binding a name the statement does not have stops the process, naming the name and the SQL") {
    testing::TempDir dir;
    Death d = in_child([&] {
        auto db = std::move(store::Db::open(dir.file("luaflow.db")).value());
        store::Stmt::Use(db->stmt("SELECT :known")).bind(":unknown", 1);
    });
    REQUIRE(WIFSIGNALED(d.status));
    CHECK(WTERMSIG(d.status) == SIGABRT);
    CHECK(d.err.find("no such bind parameter :unknown in [SELECT :known]") != std::string::npos);
}

TEST_CASE("SQL that does not prepare ends the process with code 70 and a message carrying the statement") {
    testing::TempDir dir;
    Death d = in_child([&] {
        auto db = std::move(store::Db::open(dir.file("luaflow.db")).value());
        Stmt bad(nullptr, db->handle(), "SELECT x FROM no_such_table");
    });
    REQUIRE(WIFEXITED(d.status));
    CHECK(WEXITSTATUS(d.status) == 70);
    CHECK(d.err.find(
              "SQL error 1 (no such table: no_such_table) while running [SELECT x FROM no_such_table]") !=
          std::string::npos);
}

TEST_CASE("a step that fails ends the process with code 70 and a message carrying the statement") {
    testing::TempDir dir;
    Death d = in_child([&] {
        auto db = std::move(store::Db::open(dir.file("luaflow.db")).value());
        db->exec("CREATE TABLE t (x INTEGER NOT NULL)");
        db->write(); // the writes join the turn's transaction, as the store's do
        store::Stmt::Use(db->stmt("INSERT INTO t (x) VALUES (:x)")).bind_null(":x").run();
    });
    REQUIRE(WIFEXITED(d.status));
    CHECK(WEXITSTATUS(d.status) == 70);
    CHECK(d.err.find("(NOT NULL constraint failed: t.x) while running [INSERT INTO t (x) VALUES (:x)]") !=
          std::string::npos);
}
