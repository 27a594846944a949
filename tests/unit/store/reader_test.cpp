// Large reads go to the thread pool through a read-only connection: they see the last commit (never the
// turn's open transaction), one snapshot per job, and their result comes back on the loop.
#include "daemon/store/db.hpp"
#include "daemon/store/reader.hpp"
#include "tests/unit/support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <thread>

using namespace luaflow;
using namespace luaflow::store;

namespace {

Result<std::string> values(Db& db) {
    std::string out;
    Stmt::Use q(db.stmt("SELECT v FROM t ORDER BY v"));
    while (q.step())
        out += q.text(0) + ";";
    return out;
}

} // namespace

TEST_CASE("a reader job sees the last commit, off the loop thread, and answers on it") {
    testing::TempDir dir;
    std::string path = dir.file("luaflow.db");
    auto db = std::move(Db::open(path).value());
    uv_loop_t loop;
    uv_loop_init(&loop);
    {
        Reader reader(&loop, path);
        db->exec("CREATE TABLE t(v TEXT)");
        db->exec("INSERT INTO t(v) VALUES ('committed')");
        db->write();
        Stmt::Use(db->stmt("INSERT INTO t(v) VALUES ('open')")).run(); // the turn's transaction, open

        const auto loop_thread = std::this_thread::get_id();
        std::thread::id read_on, done_on;
        std::optional<Result<std::string>> got;
        reader.run(
            [&](Db& r) {
                read_on = std::this_thread::get_id();
                return values(r);
            },
            [&](Result<std::string> r) {
                done_on = std::this_thread::get_id();
                got = std::move(r);
            });
        uv_run(&loop, UV_RUN_DEFAULT);
        REQUIRE(got);
        REQUIRE(got->ok());
        CHECK(got->value() == "committed;");
        CHECK(read_on != loop_thread);
        CHECK(done_on == loop_thread);

        db->flush();
        got.reset();
        reader.run(values, [&](Result<std::string> r) { got = std::move(r); });
        uv_run(&loop, UV_RUN_DEFAULT);
        REQUIRE(got);
        CHECK(got->value() == "committed;open;");
    }
    uv_loop_close(&loop);
}

TEST_CASE("a reader on a database that cannot be opened answers the error") {
    testing::TempDir dir;
    uv_loop_t loop;
    uv_loop_init(&loop);
    {
        Reader reader(&loop, dir.file("missing/luaflow.db"));
        std::optional<Result<std::string>> got;
        reader.run(values, [&](Result<std::string> r) { got = std::move(r); });
        uv_run(&loop, UV_RUN_DEFAULT);
        REQUIRE(got);
        REQUIRE_FALSE(got->ok());
        CHECK(got->error().message.find("cannot open database") != std::string::npos);
    }
    uv_loop_close(&loop);
}
