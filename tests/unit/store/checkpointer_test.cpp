// WAL checkpoints run on the thread pool instead of inside a COMMIT on the loop: the data reaches the
// database file, and once writes pause the WAL is reused from its start.
#include "daemon/store/checkpointer.hpp"
#include "daemon/store/db.hpp"
#include "tests/unit/support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <filesystem>

using namespace luaflow;
using namespace luaflow::store;

TEST_CASE("the WAL is checkpointed off the loop") {
    testing::TempDir dir;
    std::string path = dir.file("luaflow.db");
    auto db = std::move(Db::open(path).value());
    uv_loop_t loop;
    uv_loop_init(&loop);
    {
        // At 1000 pages (the daemon's is 4000), so that the sizes below stay small; a catch-up is never
        // given up on, so that what reaches the file does not depend on how busy the machine's disk is
        // (CI's runs of the other tests made a 50 ms catch-up give up, and the file held 2300 pages).
        Checkpointer checkpointer(&loop, *db, path, 600'000, 1000);
        db->exec("CREATE TABLE blobs(v BLOB)");
        std::string page(4000, 'x');
        for (int i = 0; i < 6000; ++i) {
            db->write();
            Stmt::Use q(db->stmt("INSERT INTO blobs(v) VALUES (:v)"));
            q.bind(":v", page).run();
            db->flush();
            uv_run(&loop, UV_RUN_NOWAIT); // lets a finished job report back
        }
        uv_run(&loop, UV_RUN_DEFAULT);
        // Pages reached the database file although the daemon's connection never checkpointed: SQLite's
        // automatic checkpoint is replaced by the hook. At least the first checkpoint's 1000 pages: how many
        // more depends on how fast the pool's checkpoints went while the burst wrote.
        CHECK(std::filesystem::file_size(path) > 1000u * 4000);
        auto wal_after_burst = std::filesystem::file_size(path + "-wal");
        // Slow writes, as when the burst is over: the checkpointer catches up and the WAL restarts from
        // its beginning instead of growing.
        for (int i = 0; i < 3000; ++i) {
            db->write();
            Stmt::Use q(db->stmt("INSERT INTO blobs(v) VALUES (:v)"));
            q.bind(":v", page).run();
            db->flush();
            uv_run(&loop, UV_RUN_DEFAULT); // each job finishes before the next write
        }
        // (Without checkpoints it would grow by about 3000 pages of 8 KB.)
        CHECK(std::filesystem::file_size(path + "-wal") < wal_after_burst + (1u << 20));
        CHECK(std::filesystem::file_size(path) > 8000u * 4000);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
}

TEST_CASE("under steady writes the WAL still starts over") {
    // A passive checkpoint never catches up with writes that keep coming, and SQLite starts the WAL over
    // only for a transaction begun when every frame is in the database: the checkpointer holds commits
    // for a last short checkpoint and begins the open transaction again. Without that the WAL grows by
    // every write (here by about 8 KB each, to 70 MB).
    testing::TempDir dir;
    std::string path = dir.file("luaflow.db");
    auto db = std::move(Db::open(path).value());
    uv_loop_t loop;
    uv_loop_init(&loop);
    {
        Checkpointer checkpointer(&loop, *db, path, 600'000, 1000); // never gives up on a catch-up here
        db->exec("CREATE TABLE blobs(v BLOB)");
        std::string page(4000, 'x');
        auto write = [&](int n) {
            for (int i = 0; i < n; ++i) {
                db->write(); // a transaction is open whenever a job reports back
                Stmt::Use q(db->stmt("INSERT INTO blobs(v) VALUES (:v)"));
                q.bind(":v", page).run();
                // Each job ends before the next commit, however slow the disk: the same steps on every run.
                while (checkpointer.busy())
                    uv_run(&loop, UV_RUN_ONCE);
                db->flush();
            }
        };
        write(3000);
        auto wal_after_first = std::filesystem::file_size(path + "-wal");
        write(6000);
        while (db->pending() || db->in_write()) {
            uv_run(&loop, UV_RUN_ONCE);
            db->flush();
        }
        uv_run(&loop, UV_RUN_DEFAULT);
        CHECK(checkpointer.restarts() > 1);
        CAPTURE(checkpointer.gave_up());
        // Once started over, the file stays the size it had.
        CHECK(std::filesystem::file_size(path + "-wal") <= wal_after_first);
        // Nothing was lost to the transactions begun again.
        Stmt::Use count(db->stmt("SELECT count(*) FROM blobs"));
        REQUIRE(count.step());
        CHECK(count.int64(0) == 9000);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
}
