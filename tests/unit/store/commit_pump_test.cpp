// The per-turn commit (store/commit_pump): what a loop turn writes is committed before the loop waits
// again, and what waited for it runs after. A second, read-only connection to the same file stands for
// the outside world: it sees a change only once it is committed (WAL).
#include "daemon/store/commit_pump.hpp"
#include "daemon/store/db.hpp"
#include "tests/unit/support/temp_dir.hpp"
#include "tests/unit/support/test_loop.hpp"

#include <doctest/doctest.h>

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

using namespace luaflow;

namespace {

// Another connection to the database file: what a reader (or a crash) would find on disk.
class Reader {
  public:
    explicit Reader(const std::string& path) {
        REQUIRE(sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    }
    ~Reader() { sqlite3_close_v2(db_); }
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;
    std::int64_t rows() {
        sqlite3_stmt* s = nullptr;
        REQUIRE(sqlite3_prepare_v2(db_, "SELECT count(*) FROM t", -1, &s, nullptr) == SQLITE_OK);
        std::int64_t n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
        sqlite3_finalize(s);
        return n;
    }

  private:
    sqlite3* db_ = nullptr;
};

struct Fixture {
    testing::Loop l;
    testing::TempDir dir;
    std::unique_ptr<store::Db> db;
    std::unique_ptr<store::CommitPump> pump;
    std::unique_ptr<Reader> reader;

    Fixture() {
        db = std::move(store::Db::open(dir.file("luaflow.db")).value());
        db->exec("CREATE TABLE t (x INTEGER NOT NULL)");
        pump = std::make_unique<store::CommitPump>(&l.uv, *db);
        reader = std::make_unique<Reader>(dir.file("luaflow.db"));
    }
    ~Fixture() {
        reader.reset();
        pump.reset();
        db.reset();
    }
    // Writes one row in the turn's transaction, through the Db's own statements.
    void insert(std::int64_t x) {
        db->write();
        store::Stmt::Use(db->stmt("INSERT INTO t (x) VALUES (:x)")).bind(":x", x).run();
    }
};

} // namespace

TEST_CASE("the writes of one loop turn are committed together, once, before the loop waits again") {
    Fixture f;
    std::uint64_t before = f.db->commits();
    loop::Timer writer(&f.l.uv);
    writer.start(1, [&] {
        for (int i = 0; i < 100; ++i)
            f.insert(i);
        // Not yet on disk: the change is committed at the end of the turn, not by each write.
        CHECK(f.reader->rows() == 0);
    });
    // The only other thing the loop waits for is seconds away: a commit that waited for the poll to
    // end would come after it.
    loop::Timer far(&f.l.uv);
    far.start(2'000, [] {});
    std::uint64_t t0 = uv_hrtime();
    for (int turns = 0; turns < 3 && (f.db->commits() == before || f.db->in_write()); ++turns)
        uv_run(&f.l.uv, UV_RUN_ONCE);
    CHECK((uv_hrtime() - t0) / 1'000'000 < 1'000);
    CHECK(f.db->commits() == before + 1);
    CHECK_FALSE(f.db->in_write());
    CHECK(f.reader->rows() == 100);
    far.stop();
}

TEST_CASE("after-commit callbacks run once the change is committed, in the order they were queued") {
    Fixture f;
    std::vector<int> order;
    std::vector<std::int64_t> seen; // rows the other connection saw when each callback ran
    f.insert(1);
    for (int i = 1; i <= 3; ++i)
        f.db->after_commit([&, i] {
            order.push_back(i);
            seen.push_back(f.reader->rows());
        });
    CHECK(order.empty()); // nothing acts on a change before it is committed
    CHECK(f.l.run_until([&] { return order.size() == 3; }, 5'000));
    CHECK(order == std::vector<int>{1, 2, 3});
    CHECK(seen == std::vector<std::int64_t>{1, 1, 1});
    CHECK(f.db->commits() == 1);
}

TEST_CASE("what an after-commit callback writes is committed by a later round, then its own callbacks run") {
    Fixture f;
    // A chain longer than one turn's rounds: each callback writes the next row and waits for its commit.
    constexpr int kChain = 30;
    std::vector<std::int64_t> seen;
    std::function<void(int)> step = [&](int k) {
        seen.push_back(f.reader->rows()); // row k-1 is committed by now
        if (k > kChain) return;
        f.insert(k);
        f.db->after_commit([&, k] { step(k + 1); });
    };
    f.insert(0);
    f.db->after_commit([&] { step(1); });
    // No timer or I/O keeps the loop alive: only the pump's own idle handle, while work remains. A turn
    // whose poll blocked would hang here, and a pump that stopped arming would leave the chain unfinished.
    int turns = 0;
    while (f.db->pending() && turns < 100) {
        uv_run(&f.l.uv, UV_RUN_ONCE);
        ++turns;
    }
    CHECK_FALSE(f.db->pending());
    REQUIRE(seen.size() == kChain + 1);
    for (int k = 1; k <= kChain + 1; ++k)
        CHECK(seen[static_cast<std::size_t>(k - 1)] == k);
    CHECK(f.reader->rows() == kChain + 1);
    CHECK(f.db->commits() == kChain + 1);
    // A turn does a bounded number of rounds, so I/O gets its poll in between.
    CHECK(turns > 1);
}

TEST_CASE("a loop turn with nothing written commits nothing, and the pump alone keeps no loop running") {
    Fixture f;
    // Run with no other handle: the loop has nothing to wait for and ends. Were the pump's idle handle
    // left active, it would spin until the unreferenced stopper ends it.
    bool stopped = false;
    loop::Timer stopper(&f.l.uv);
    stopper.start(1'000, [&] {
        stopped = true;
        uv_stop(&f.l.uv);
    });
    stopper.unref();
    uv_run(&f.l.uv, UV_RUN_DEFAULT);
    CHECK_FALSE(stopped);
    stopper.stop();
    CHECK(f.db->commits() == 0);

    // With nothing written, a callback does not wait for a commit, and none is made for it.
    bool ran = false;
    f.db->after_commit([&] { ran = true; });
    CHECK(ran);
    CHECK_FALSE(f.db->pending());

    // Once the turn's change is committed, further turns commit nothing more.
    f.insert(1);
    CHECK(f.l.run_until([&] { return f.db->commits() == 1 && !f.db->in_write(); }, 5'000));
    int turns = 0;
    f.l.run_until([&] { return ++turns > 20; }, 5'000);
    CHECK(f.db->commits() == 1);
    CHECK(f.reader->rows() == 1);
}

TEST_CASE("once the pump is gone, a turn's writes stay in their open transaction, unseen by readers") {
    Fixture f;
    f.pump.reset();
    f.insert(1);
    int turns = 0;
    f.l.run_until([&] { return ++turns > 5; }, 5'000);
    CHECK(f.db->in_write());
    CHECK(f.db->commits() == 0);
    CHECK(f.reader->rows() == 0);
    // Flushing by hand commits it: the pump is what made it happen.
    CHECK_FALSE(f.db->flush());
    CHECK(f.reader->rows() == 1);
}
