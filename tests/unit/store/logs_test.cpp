#include "daemon/store/db.hpp"
#include "daemon/store/definitions.hpp"
#include "daemon/store/executions.hpp"
#include "daemon/store/logs.hpp"
#include "tests/unit/support/temp_dir.hpp"

#include <doctest/doctest.h>

using namespace luaflow;
using namespace luaflow::store;
using luaflow::testing::TempDir;

namespace {

void add_execution(Db& db, const std::string& id, std::int64_t seq) {
    NewExecution e;
    e.id = id;
    e.seq = seq;
    e.workflow = "wf";
    e.definition = "d1";
    e.status = ExecStatus::running;
    e.trigger = {{"type", "manual"}};
    e.created_at = 1'000;
    e.actions = {"a", "b"};
    insert_execution(db.write(), e);
}

// The plan SQLite picks for `sql`, its detail column joined: "SEARCH logs USING INDEX ...".
std::string query_plan(Db& db, const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(db.handle(), ("EXPLAIN QUERY PLAN " + sql).c_str(), -1, &s, nullptr) ==
            SQLITE_OK);
    std::string plan;
    while (sqlite3_step(s) == SQLITE_ROW)
        plan += reinterpret_cast<const char*>(sqlite3_column_text(s, 3)) + std::string("\n");
    sqlite3_finalize(s);
    return plan;
}

} // namespace

TEST_CASE("a log is read in pages by keyset on its row id, each bounded in rows and bytes") {
    TempDir dir;
    auto db = std::move(Db::open(dir.file("luaflow.db")).value());
    insert_definition(db->write(), "d1", {"wf", "wf.lua", "x"});
    add_execution(*db, "exec1", 1);
    add_execution(*db, "other", 2);
    for (int i = 0; i < 2500; ++i) {
        append_log(db->write(),
                   {0, "exec1", i % 5 == 0 ? "b" : "a", 1, 1'000 + i, "stdout", std::to_string(i)});
        append_log(db->write(), {0, "other", "a", 1, 1'000 + i, "stdout", "not this one"});
    }
    db->flush();

    std::vector<std::string> lines;
    int pages = 0;
    std::int64_t after = 0;
    for (;;) {
        LogPage page = read_log_page(*db, "exec1", std::nullopt, after, 1000, 1u << 20);
        ++pages;
        CHECK(page.lines.size() <= 1000);
        for (const auto& l : page.lines)
            lines.push_back(l.line);
        after = page.last_id;
        if (!page.full) break;
    }
    REQUIRE(lines.size() == 2500);
    CHECK(pages == 3);
    for (int i = 0; i < 2500; ++i)
        CHECK(lines[static_cast<size_t>(i)] == std::to_string(i));

    // The byte bound cuts a page early, and the next one goes on after its last row.
    LogPage small = read_log_page(*db, "exec1", std::nullopt, 0, 1000, 10);
    CHECK(small.full);
    CHECK(small.lines.size() == 10); // "0" to "9": one byte each
    LogPage next = read_log_page(*db, "exec1", std::nullopt, small.last_id, 1000, 1u << 20);
    CHECK(next.lines.front().line == std::to_string(small.lines.size()));

    // Another action's rows count as looked at: a page does bounded work even when few rows match.
    LogPage b = read_log_page(*db, "exec1", std::string("b"), 0, 100, 1u << 20);
    CHECK(b.full);
    CHECK(b.lines.size() == 20);
    CHECK(b.lines[1].line == "5");
}

TEST_CASE("the log page query searches the index on (execution_id, id), never scans or sorts") {
    TempDir dir;
    auto db = std::move(Db::open(dir.file("luaflow.db")).value());
    std::string plan = query_plan(*db, kLogPageSql);
    INFO(plan);
    CHECK(plan.find("SEARCH logs USING INDEX logs_execution (execution_id=? AND id>?)") != std::string::npos);
    CHECK(plan.find("SCAN") == std::string::npos);
    CHECK(plan.find("TEMP B-TREE") == std::string::npos);
}
