// The one connection: a write that finds the disk full (issue 14, item 15) is not lost and not fatal.
#include "daemon/store/db.hpp"
#include "daemon/store/kv.hpp"
#include "tests/unit/support/in_child.hpp"
#include "tests/unit/support/temp_dir.hpp"

#include <doctest/doctest.h>
#include <sqlite3.h>

using namespace luaflow;

namespace {

std::int64_t count_rows(store::Db& db) {
    store::Stmt::Use q(db.stmt("SELECT count(*) FROM t"));
    q.step();
    return q.int64(0);
}

} // namespace

TEST_CASE("issue 14: a write that finds the disk full goes through once room is freed, and nothing is lost") {
    testing::TempDir dir;
    auto db = std::move(store::Db::open(dir.file("luaflow.db")).value());
    db->exec("CREATE TABLE t (x TEXT NOT NULL)");
    // A database that may not grow stands for a full disk: SQLite answers SQLITE_FULL alike.
    sqlite3_exec(db->handle(), "PRAGMA max_page_count = 1", nullptr, nullptr, nullptr);
    int full = 0;
    db->set_on_disk_full([&] {
        ++full;
        sqlite3_exec(db->handle(), "PRAGMA max_page_count = 1000000", nullptr, nullptr, nullptr);
        return true;
    });
    bool acted = false;
    db->write();
    for (int i = 0; i < 50; ++i)
        store::Stmt::Use(db->stmt("INSERT INTO t (x) VALUES (:x)"))
            .bind(":x", std::string(4000, 'a' + i % 26))
            .run();
    db->after_commit([&] { acted = true; });
    CHECK_FALSE(acted);
    db->flush();
    CHECK(acted);
    CHECK(full == 1);
    CHECK(count_rows(*db) == 50);
}

TEST_CASE("issue 14: new work is admitted or refused as the admission hook says") {
    testing::TempDir dir;
    auto db = std::move(store::Db::open(dir.file("luaflow.db")).value());
    bool first = true;
    CHECK(db->admit_new_work("wf", first));
    CHECK_FALSE(first);
    db->set_admission([](const std::string& wf, bool& first_refusal) -> Result<void> {
        first_refusal = wf == "wf";
        return make_error(ErrorCode::unavailable, "disk full");
    });
    auto refused = db->admit_new_work("wf", first);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().message == "disk full");
    CHECK(first);
}

TEST_CASE("a change made outside the turn's write transaction is refused as an illegal commit attempt") {
    testing::TempDir dir;
    {
        auto db = std::move(store::Db::open(dir.file("luaflow.db")).value());
        db->exec("CREATE TABLE t (x TEXT NOT NULL)");
    }
    testing::Death d = testing::in_child([&] {
        auto db = std::move(store::Db::open(dir.file("luaflow.db")).value());
        // No db->write(): this insert would commit on its own, apart from the turn's changes.
        store::Stmt::Use(db->stmt("INSERT INTO t (x) VALUES ('stray')")).run();
    });
    CHECK(WIFEXITED(d.status));
    CHECK(WEXITSTATUS(d.status) == 70);
    CHECK(d.err.find("illegal commit attempt") != std::string::npos);
    CHECK(d.err.find("INSERT INTO t") != std::string::npos); // the statement is named
    // Nothing of it reached the database.
    auto db = std::move(store::Db::open(dir.file("luaflow.db")).value());
    CHECK(count_rows(*db) == 0);
}

TEST_CASE("the turn's writes commit together through the token, and only at flush") {
    testing::TempDir dir;
    auto db = std::move(store::Db::open(dir.file("luaflow.db")).value());
    db->exec("CREATE TABLE t (x TEXT NOT NULL)");
    store::WriteTx& tx = db->write();
    CHECK(&tx.db() == db.get());
    CHECK(&db->write() == &tx); // one transaction per turn: the same token
    store::Stmt::Use(tx.db().stmt("INSERT INTO t (x) VALUES ('a')")).run();
    store::Stmt::Use(tx.db().stmt("INSERT INTO t (x) VALUES ('b')")).run();
    auto commits = db->commits();
    db->flush();
    CHECK(db->commits() == commits + 1);
    CHECK_FALSE(db->in_write());
    CHECK(count_rows(*db) == 2);
}

TEST_CASE("issue 19: a new database is made with incremental auto_vacuum and gives pruned space back") {
    testing::TempDir dir;
    auto db = std::move(store::Db::open(dir.file("luaflow.db")).value());
    CHECK(db->pragma_int("PRAGMA auto_vacuum") == 2);
    CHECK(db->synchronous() == 1); // NORMAL: a commit survives kill -9
    std::string row(4000, 'x');
    for (int i = 0; i < 2000; ++i)
        store::kv_set(db->write(), "wf", "k" + std::to_string(i), row);
    db->flush();
    std::int64_t full = db->pragma_int("PRAGMA page_count");
    for (int i = 0; i < 2000; ++i)
        store::kv_delete(db->write(), "wf", "k" + std::to_string(i));
    db->flush();
    CHECK(db->pragma_int("PRAGMA freelist_count") > 1000);
    std::int64_t left = db->give_back_free_pages(db->write(), 100); // a chunk
    db->flush();
    CHECK(left > 0);
    while (db->give_back_free_pages(db->write(), 1000) > 0)
        db->flush();
    db->flush();
    CHECK(db->pragma_int("PRAGMA page_count") < full / 10);
}

TEST_CASE("issue 19: an older database is converted to incremental auto_vacuum once, its data kept") {
    testing::TempDir dir;
    {
        auto db = std::move(store::Db::open(dir.file("luaflow.db")).value());
        store::kv_set(db->write(), "wf", "k", "v");
        db->flush();
    }
    // As a luaflowd before issue 19 made it: auto_vacuum NONE (it needs a VACUUM to change).
    sqlite3* raw = nullptr;
    REQUIRE(sqlite3_open(dir.file("luaflow.db").c_str(), &raw) == SQLITE_OK);
    REQUIRE(sqlite3_exec(raw, "PRAGMA auto_vacuum=NONE; VACUUM;", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(raw);
    auto db = std::move(store::Db::open(dir.file("luaflow.db"), store::Db::Synchronous::full).value());
    CHECK(db->pragma_int("PRAGMA auto_vacuum") == 2);
    CHECK(db->synchronous() == 2); // FULL: durability = "power"
    CHECK(store::kv_get(*db, "wf", "k") == "v");
}
