// The retention pass is background work: while the store is busy with a checkpoint it writes nothing
// (its deletions would make the checkpoint's catch-up, which holds every commit and so every socket
// answer, longer), and it goes on once the checkpoint is done.
#include "daemon/store/db.hpp"
#include "daemon/store/executions.hpp"
#include "daemon/store/logs.hpp"
#include "daemon/store/retention_pruner.hpp"
#include "tests/unit/support/temp_dir.hpp"
#include "tests/unit/support/test_loop.hpp"

#include <doctest/doctest.h>

using namespace luaflow;
using namespace luaflow::store;

TEST_CASE("the retention pass waits while a checkpoint is out, then prunes") {
    testing::TempDir dir;
    testing::Loop loop;
    auto db = std::move(Db::open(dir.file("luaflow.db")).value());
    insert_definition(db->write(), "d1", {"wf", "wf.lua", "x"});
    for (int i = 1; i <= 5; ++i) {
        NewExecution e;
        e.id = "old" + std::to_string(i);
        e.seq = i;
        e.workflow = "wf";
        e.definition = "d1";
        e.status = ExecStatus::running;
        e.trigger = {{"type", "manual"}};
        e.input = json::object();
        e.shared = json::object();
        e.created_at = 1'000;
        e.started_at = 1'000;
        e.actions = {"a"};
        ExecutionText row = insert_execution(db->write(), e);
        append_log(db->write(), {0, e.id, "a", 1, 1'000, "log", "x"});
        finish_execution(db->write(), row, ExecStatus::succeeded, std::nullopt, 1'000 + i);
    }
    db->flush();
    bool checkpointing = true;
    int asked = 0;
    {
        RetentionPruner pruner(&loop.uv, *db, dir.path() + "/scratch", [&] {
            ++asked;
            return checkpointing;
        });
        pruner.configure(1, 0); // everything finished more than a day ago goes
        pruner.start();
        auto flushed = [&] {
            db->flush();
            return false;
        };
        loop.run_until(flushed, 100);
        // It asked again and again, and wrote nothing meanwhile.
        CHECK(asked > 3);
        CHECK_FALSE(db->in_write());
        CHECK(find_execution(*db, "old1"));
        checkpointing = false;
        CHECK(loop.run_until(
            [&] {
                db->flush();
                return !find_execution(*db, "old5");
            },
            5000));
        CHECK(read_logs(*db, "old1", std::nullopt, 0, 10).empty());
    }
}
