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
        Checkpointer checkpointer(&loop, *db, path);
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
        // automatic checkpoint is replaced by the hook.
        CHECK(std::filesystem::file_size(path) > 3000u * 4000);
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
