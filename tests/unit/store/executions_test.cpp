#include "daemon/exec/report.hpp"
#include "daemon/store/db.hpp"
#include "daemon/store/events.hpp"
#include "daemon/store/executions.hpp"
#include "daemon/store/logs.hpp"
#include "daemon/store/notifications.hpp"
#include "daemon/store/retention.hpp"
#include "tests/unit/support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <map>

namespace luaflow::store {
extern const char* const kSchemaSql;
}

using namespace luaflow;
using namespace luaflow::store;
using luaflow::testing::TempDir;

namespace {

NewExecution sample(const std::string& id, std::int64_t seq) {
    NewExecution e;
    e.id = id;
    e.seq = seq;
    e.workflow = "wf";
    e.definition = "d1";
    e.status = ExecStatus::running;
    e.trigger = {{"type", "manual"}};
    e.input = {{"x", 1}};
    e.shared = {{"threshold", 10}};
    e.created_at = 1'000;
    e.started_at = 1'000;
    e.actions = {"a", "b"};
    return e;
}

// Whether a second connection (another process, after a crash) sees the execution.
bool visible_elsewhere(const std::string& path, const std::string& id) {
    sqlite3* other = nullptr;
    sqlite3_open_v2(path.c_str(), &other, SQLITE_OPEN_READONLY, nullptr);
    sqlite3_stmt* s = nullptr;
    sqlite3_prepare_v2(other, "SELECT count(*) FROM executions WHERE id = ?", -1, &s, nullptr);
    sqlite3_bind_text(s, 1, id.c_str(), -1, SQLITE_TRANSIENT);
    bool seen = sqlite3_step(s) == SQLITE_ROW && sqlite3_column_int(s, 0) == 1;
    sqlite3_finalize(s);
    sqlite3_close(other);
    return seen;
}

ActionText named(const std::string& name) {
    ActionText a;
    a.name = name;
    a.status = "pending";
    return a;
}

// A store as schema version `version` left it, holding `rows` (SQL run after its migrations).
void write_old_store(const std::string& path, int version, const std::string& rows) {
    std::string all = kSchemaSql;
    const auto cut = all.find("-- migration " + std::to_string(version + 1) + "\n");
    REQUIRE(cut != std::string::npos);
    sqlite3* old = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &old) == SQLITE_OK);
    const std::string script = "PRAGMA foreign_keys=ON; BEGIN;" + all.substr(0, cut) +
                               "PRAGMA user_version=" + std::to_string(version) + ";" + rows + "COMMIT;";
    REQUIRE(sqlite3_exec(old, script.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(old);
}

} // namespace

TEST_CASE("a fresh database gets every migration and WAL mode") {
    TempDir dir;
    auto db = Db::open(dir.file("luaflow.db"));
    REQUIRE(db);
    CHECK((*db)->schema_version() >= 1);
    Stmt::Use q((*db)->stmt("PRAGMA journal_mode"));
    REQUIRE(q.step());
    CHECK(q.text(0) == "wal");
}

TEST_CASE("changes are committed by flush, and after_commit runs only then") {
    TempDir dir;
    std::string path = dir.file("luaflow.db");
    auto db = std::move(Db::open(path).value());
    insert_definition(db->write(), "d1", {"wf", "wf.lua", "return workflow {}"});
    insert_execution(db->write(), sample("abc123", 1));
    bool acted = false;
    db->after_commit([&] { acted = true; });
    CHECK_FALSE(acted);
    CHECK_FALSE(visible_elsewhere(path, "abc123"));
    CHECK(db->pending());
    db->flush();
    CHECK(acted);
    CHECK(visible_elsewhere(path, "abc123"));
    CHECK(db->commits() == 1);
    // Nothing pending: after_commit runs at once.
    bool now = false;
    db->after_commit([&] { now = true; });
    CHECK(now);
}

TEST_CASE("action transitions and the inspect document") {
    TempDir dir;
    auto db = std::move(Db::open(dir.file("luaflow.db")).value());
    insert_definition(db->write(), "d1", {"wf", "wf.lua", "x"});
    ExecutionText exec = insert_execution(db->write(), sample("abc123", 1));
    ActionText a = named("a"), b = named("b");
    start_attempt(db->write(), 1, a, 1, 2'000, "");
    schedule_retry(db->write(), 1, a, 3'000, "boom", nlohmann::json{{"tries", 1}});
    start_attempt(db->write(), 1, a, 2, 3'000, "");
    ActionResult ok;
    ok.status = ActionStatus::succeeded;
    ok.output = nlohmann::json{{"n", 2}};
    ok.finished_at = 3'500;
    finish_action(db->write(), 1, a, ok);
    ActionResult skipped;
    skipped.status = ActionStatus::skipped;
    skipped.finished_at = 3'500;
    finish_action(db->write(), 1, b, skipped);
    finish_execution(db->write(), exec, ExecStatus::succeeded, std::nullopt, 4'000);
    db->flush();

    auto row = find_execution(*db, "abc123");
    REQUIRE(row);
    nlohmann::json doc = exec::inspect_document(*row);
    CHECK(doc["status"] == "succeeded");
    CHECK(doc["actions"]["a"]["attempts"] == 2);
    CHECK(doc["actions"]["a"]["output"] == nlohmann::json{{"n", 2}});
    CHECK(doc["actions"]["a"]["error"].is_null());
    CHECK(doc["actions"]["b"]["status"] == "skipped");
    CHECK(doc["shared"] == nlohmann::json{{"threshold", 10}});
    CHECK(row->actions[0].node == nlohmann::json{{"tries", 1}});
    for (const char* key :
         {"id", "workflow", "status", "trigger", "input", "shared", "error", "created_at", "started_at",
          "finished_at", "scheduled_for", "parent", "actions", "notifications"})
        CHECK_MESSAGE(doc.contains(key), key);
    CHECK(active_executions(*db).empty());
}

TEST_CASE("inspect_text is the inspect document's dump, written row by row") {
    TempDir dir;
    auto db = std::move(Db::open(dir.file("luaflow.db")).value());
    insert_definition(db->write(), "d1", {"wf", "wf.lua", "x"});
    NewExecution e = sample("abc123", 1);
    e.actions = {"a", "b", "c \"quoted\"", "d", "e", "\u00e9t\u00e9"};
    e.scheduled_for = 1'800'000'000'000;
    e.scheduled_tz = "Europe/Berlin";
    ExecutionText exec = insert_execution(db->write(), e);
    // The rows as the writes keep them (the executor's copy), by name as the report lists them.
    std::map<std::string, ActionText> kept;
    for (const std::string& name : e.actions)
        kept[name] = named(name);
    // a: retried, then succeeded with a nested, non-ASCII output, on a host with resources; two children.
    start_attempt(db->write(), 1, kept["a"], 1, 2'000, "gpu1", nlohmann::json{{"cpus", 2}, {"gpus", {"0"}}});
    schedule_retry(db->write(), 1, kept["a"], 3'000, "boom", std::nullopt);
    start_attempt(db->write(), 1, kept["a"], 2, 3'000, "gpu1", nlohmann::json{{"cpus", 2}, {"gpus", {"0"}}});
    ActionResult ok;
    ok.output = nlohmann::json{{"n", 2.5}, {"list", {1, "z\u00fcrich", nullptr}}, {"deep", {{"k", true}}}};
    ok.exit_code = 0;
    ok.finished_at = 3'500;
    finish_action(db->write(), 1, kept["a"], ok);
    for (int k = 1; k <= 2; ++k) {
        NewExecution child = sample("child" + std::to_string(k), 1 + k);
        child.parent = "abc123";
        child.trigger = {
            {"type", "child"}, {"parent", "abc123"}, {"action", "a"}, {"attempt", 2}, {"call", k}};
        insert_execution(db->write(), child);
    }
    // b skipped; c failed with an error that needs escaping and an event; d waits; e waits for its retry.
    ActionResult skipped;
    skipped.status = ActionStatus::skipped;
    skipped.finished_at = 3'600;
    finish_action(db->write(), 1, kept["b"], skipped);
    start_attempt(db->write(), 1, kept["c \"quoted\""], 1, 3'700, "");
    ActionResult failed;
    failed.status = ActionStatus::failed;
    failed.error = "line 1\n\"line\" 2\t\u0001";
    failed.event = ActionEvent::resource;
    failed.exit_code = 137;
    failed.finished_at = 3'800;
    finish_action(db->write(), 1, kept["c \"quoted\""], failed);
    set_waiting(db->write(), 1, kept["d"], "queue gpu: 2 of 2 running");
    start_attempt(db->write(), 1, kept["e"], 1, 3'900, "");
    schedule_retry(db->write(), 1, kept["e"], 9'000, "not yet", nlohmann::json{{"tries", 1}});
    record_event(db->write(), {"wf", std::string("abc123"), Event::late, 1'500, 1, "started 2 s late"});
    save_shared(db->write(), exec, nlohmann::json{{"seen", {"a", "b"}}});
    db->flush();

    auto from_kept = [&] {
        exec::ReportWriter writer(children_of(*db, "abc123"));
        for (const auto& [name, row] : kept)
            writer.action(row);
        return writer.finish(exec, execution_events(*db, "abc123"), execution_notifications(*db, "abc123"));
    };
    auto row = find_execution(*db, "abc123");
    REQUIRE(row);
    const std::string want = exec::inspect_document(std::move(*row))
                                 .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    auto got = exec::inspect_text(*db, "abc123");
    REQUIRE(got);
    CHECK(*got == want);
    CHECK(from_kept() == want);
    CHECK(nlohmann::json::parse(*got)["actions"]["a"]["children"].size() == 2);
    CHECK_FALSE(exec::inspect_text(*db, "nope"));

    // And finished, with an error of its own and ctx.shared written with the end.
    const nlohmann::json shared = {{"total", 3}};
    finish_execution(db->write(), exec, ExecStatus::failed, std::string("action 'c \"quoted\"' failed"),
                     4'000, &shared);
    db->flush();
    const std::string ended = exec::inspect_document(*find_execution(*db, "abc123"))
                                  .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    CHECK(*exec::inspect_text(*db, "abc123") == ended);
    CHECK(from_kept() == ended);

    // Rows written as they ended, or pending, when first needed (insert_action): kept as written too.
    NewExecution late = sample("late1", 9);
    late.actions = {};
    ExecutionText late_row = insert_execution(db->write(), late);
    start_execution(db->write(), late_row, 5'000);
    kept.clear();
    kept["a"] = named("a");
    kept["b"] = named("b");
    ActionResult quick;
    quick.output = nlohmann::json::array();
    quick.node = nlohmann::json{{"k", 1}};
    quick.finished_at = 5'100;
    quick.start = ActionResult::Start{1, 5'050};
    insert_action(db->write(), 9, kept["a"], &quick);
    insert_action(db->write(), 9, kept["b"], nullptr);
    finish_execution(db->write(), late_row, ExecStatus::cancelled, std::string("cancelled"), 5'200);
    db->flush();
    exec::ReportWriter writer(children_of(*db, "late1"));
    for (const auto& [name, r] : kept)
        writer.action(r);
    CHECK(writer.finish(late_row, execution_events(*db, "late1"), execution_notifications(*db, "late1")) ==
          *exec::inspect_text(*db, "late1"));
}

TEST_CASE("retry resets actions and counts attempts from a new base") {
    TempDir dir;
    auto db = std::move(Db::open(dir.file("luaflow.db")).value());
    insert_definition(db->write(), "d1", {"wf", "wf.lua", "x"});
    ExecutionText exec = insert_execution(db->write(), sample("abc123", 1));
    ActionText a = named("a");
    start_attempt(db->write(), 1, a, 1, 2'000, "");
    ActionResult failed;
    failed.status = ActionStatus::failed;
    failed.error = "boom";
    failed.finished_at = 2'100;
    finish_action(db->write(), 1, a, failed);
    finish_execution(db->write(), exec, ExecStatus::failed, std::string("action 'a' failed"), 2'200);
    reset_action(db->write(), 1, a);
    reopen_execution(db->write(), exec, ExecStatus::running);
    db->flush();
    exec::ReportWriter writer({});
    writer.action(a);
    writer.action(named("b"));
    CHECK(writer.finish(exec, nlohmann::json::array(), nlohmann::json::array()) ==
          *exec::inspect_text(*db, "abc123"));
    auto rows = active_executions(*db);
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].actions[0].status == ActionStatus::pending);
    CHECK(rows[0].actions[0].attempts == 1);
    CHECK(rows[0].actions[0].attempt_base == 1);
    CHECK_FALSE(rows[0].error);
}

TEST_CASE("executions are named by a unique prefix") {
    TempDir dir;
    auto db = std::move(Db::open(dir.file("luaflow.db")).value());
    insert_definition(db->write(), "d1", {"wf", "wf.lua", "x"});
    insert_execution(db->write(), sample("abc123", 1));
    insert_execution(db->write(), sample("abd456", 2));
    db->flush();
    CHECK(resolve_execution(*db, "abc").value() == "abc123");
    CHECK(resolve_execution(*db, "abd456").value() == "abd456");
    CHECK(resolve_execution(*db, "ab").error().code == ErrorCode::invalid);
    CHECK(resolve_execution(*db, "zz").error().code == ErrorCode::not_found);
    auto list = list_executions(*db, ExecutionFilter{});
    REQUIRE(list.size() == 2);
    CHECK(list[0]["id"] == "abd456"); // newest first
}

TEST_CASE("logs keep their order and filter by action") {
    TempDir dir;
    auto db = std::move(Db::open(dir.file("luaflow.db")).value());
    insert_definition(db->write(), "d1", {"wf", "wf.lua", "x"});
    insert_execution(db->write(), sample("abc123", 1));
    for (int i = 0; i < 5; ++i)
        append_log(db->write(),
                   {0, "abc123", i % 2 ? "b" : "a", 1, 1'000 + i, "stdout", "line " + std::to_string(i)});
    db->flush();
    auto all = read_logs(*db, "abc123", std::nullopt, 0, 100);
    REQUIRE(all.size() == 5);
    CHECK(all[4].line == "line 4");
    auto b = read_logs(*db, "abc123", std::string("b"), 0, 100);
    CHECK(b.size() == 2);
    auto after = read_logs(*db, "abc123", std::nullopt, all[2].id, 100);
    CHECK(after.size() == 2);
    CHECK(log_json(all[0])["stream"] == "stdout");
}

TEST_CASE("the enabled override is kept") {
    TempDir dir;
    auto db = std::move(Db::open(dir.file("luaflow.db")).value());
    CHECK_FALSE(enabled_override(*db, "wf"));
    set_enabled_override(db->write(), "wf", false);
    db->flush();
    CHECK(enabled_override(*db, "wf") == false);
    set_enabled_override(db->write(), "wf", true);
    db->flush();
    CHECK(enabled_override(*db, "wf") == true);
}

TEST_CASE("retention prunes old finished executions beyond the newest kept per workflow") {
    TempDir dir;
    auto db = std::move(Db::open(dir.file("luaflow.db")).value());
    insert_definition(db->write(), "d1", {"wf", "wf.lua", "x"});
    for (int i = 1; i <= 5; ++i) {
        NewExecution e = sample("old" + std::to_string(i), i);
        ExecutionText row = insert_execution(db->write(), e);
        append_log(db->write(), {0, e.id, "a", 1, 1'000, "log", "x"});
        finish_execution(db->write(), row, ExecStatus::succeeded, std::nullopt, 1'000 + i);
    }
    insert_execution(db->write(), sample("running", 6)); // never pruned, and not among the kept
    db->flush();
    // Keep the newest 2 finished of the workflow; everything finished before 10'000 is old enough.
    auto pruned = prune_executions(db->write(), 10'000, 2, 100);
    db->flush();
    CHECK(pruned == std::vector<std::string>{"old1", "old2", "old3"});
    CHECK_FALSE(find_execution(*db, "old1"));
    CHECK(find_execution(*db, "old4"));
    CHECK(find_execution(*db, "old5"));
    CHECK(find_execution(*db, "running"));
    CHECK(read_logs(*db, "old1", std::nullopt, 0, 10).empty());
    // Nothing finished before the cutoff: nothing goes.
    CHECK(prune_executions(db->write(), 0, 0, 100).empty());
}

TEST_CASE("a scheduled execution keeps its rule's zone and shows scheduled_for in it") {
    TempDir dir;
    auto db = std::move(Db::open(dir.file("luaflow.db")).value());
    insert_definition(db->write(), "d1", {"wf", "wf.lua", "x"});
    NewExecution e = sample("abc123", 1);
    e.scheduled_for = 1'805'101'200'000; // 2027-03-15T09:00:00Z
    e.scheduled_tz = "Europe/Berlin";
    insert_execution(db->write(), e);
    NewExecution manual = sample("def456", 2);
    insert_execution(db->write(), manual);
    db->flush();
    auto row = find_execution(*db, "abc123");
    REQUIRE(row);
    CHECK(row->scheduled_tz == "Europe/Berlin");
    // As `next` prints the rule's times: whole seconds, the zone's offset.
    CHECK(exec::inspect_document(*row)["scheduled_for"] == "2027-03-15T10:00:00+01:00");
    CHECK(exec::inspect_document(*find_execution(*db, "def456"))["scheduled_for"].is_null());
}

TEST_CASE("a database from before the zone column opens, and its scheduled runs still show") {
    // A store at schema version 5 (the last one without executions.scheduled_tz), with a scheduled run.
    TempDir dir;
    const std::string path = dir.file("luaflow.db");
    write_old_store(
        path, 5,
        "INSERT INTO definitions VALUES ('d1', 'wf', 'wf.lua', 'x', 0);"
        "INSERT INTO executions(id, seq, workflow, definition, status, trigger, input, shared, created_at, "
        "scheduled_for) VALUES ('abc123', 1, 'wf', 'd1', 'succeeded', '{\"type\":\"schedule\"}', '{}', '{}', "
        "0, "
        "1805101200000);");

    auto db = Db::open(path);
    REQUIRE_MESSAGE(db, db.error().message);
    CHECK((*db)->schema_version() >= 6);
    auto row = find_execution(**db, "abc123");
    REQUIRE(row);
    CHECK_FALSE(row->scheduled_tz);
    CHECK(exec::inspect_document(*row)["scheduled_for"] == format_rfc3339(1'805'101'200'000)); // as before
    // New runs keep their zone in the migrated store.
    insert_definition((**db).write(), "d1", {"wf", "wf.lua", "x"});
    NewExecution e = sample("def456", 2);
    e.scheduled_for = 1'805'101'200'000;
    e.scheduled_tz = "America/New_York";
    insert_execution((**db).write(), e);
    (*db)->flush();
    CHECK(exec::inspect_document(*find_execution(**db, "def456"))["scheduled_for"] ==
          "2027-03-15T05:00:00-04:00");
}

TEST_CASE("a database from before actions were keyed by seq opens with every action as it was") {
    // A store at schema version 9 (actions keyed by the execution's id), with two executions.
    TempDir dir;
    const std::string path = dir.file("luaflow.db");
    write_old_store(
        path, 9,
        "INSERT INTO definitions(digest, workflow, file, source, created_at) VALUES ('d1', 'wf', 'wf.lua', "
        "'x', 0);"
        "INSERT INTO executions(id, seq, workflow, definition, status, trigger, input, shared, created_at) "
        "VALUES ('abc123', 7, 'wf', 'd1', 'running', '{}', '{}', '{}', 0), "
        "('fed987', 8, 'wf', 'd1', 'succeeded', '{}', '{}', '{}', 0);"
        "INSERT INTO actions(execution_id, name, status, attempts, attempt_base, output, error, exit_code, "
        "host, node, started_at, finished_at, waiting, allocation) VALUES "
        "('abc123', 'a', 'succeeded', 2, 1, '{\"n\":1}', NULL, 0, 'gpu1', '{\"k\":2}', 10, 20, NULL, "
        "'{\"gpus\":[0]}'), "
        "('abc123', 'b', 'pending', 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'queue full', NULL), "
        "('fed987', 'a', 'failed', 1, 0, NULL, 'boom', 3, NULL, NULL, 5, 6, NULL, NULL);");

    auto opened = Db::open(path);
    REQUIRE_MESSAGE(opened, opened.error().message);
    Db& db = **opened;
    CHECK(db.schema_version() >= 10);
    auto row = find_execution(db, "abc123");
    REQUIRE(row);
    REQUIRE(row->actions.size() == 2);
    const ActionRow& a = row->actions[0];
    CHECK(a.name == "a");
    CHECK(a.status == ActionStatus::succeeded);
    CHECK(a.attempts == 2);
    CHECK(a.attempt_base == 1);
    CHECK(a.output == json{{"n", 1}});
    CHECK(a.exit_code == 0);
    CHECK(a.host == "gpu1");
    CHECK(a.node == json{{"k", 2}});
    CHECK(a.started_at == 10);
    CHECK(a.finished_at == 20);
    CHECK(a.allocation == json{{"gpus", {0}}});
    CHECK(row->actions[1].waiting == "queue full");
    auto other = find_execution(db, "fed987");
    REQUIRE(other);
    REQUIRE(other->actions.size() == 1);
    CHECK(other->actions[0].error == "boom");

    // The migrated rows take updates by the execution's seq, and go with their execution.
    ActionResult done;
    done.status = ActionStatus::succeeded;
    done.output = json{{"m", 2}};
    done.finished_at = 30;
    ActionText b = named("b");
    finish_action(db.write(), 7, b, done);
    db.flush();
    CHECK(find_execution(db, "abc123")->actions[1].output == json{{"m", 2}});
    {
        db.write();
        Stmt::Use d(db.stmt("DELETE FROM executions WHERE id = 'abc123'"));
        d.run();
    }
    db.flush();
    Stmt::Use q(db.stmt("SELECT count(*) FROM actions"));
    REQUIRE(q.step());
    CHECK(q.int64(0) == 1);
}

TEST_CASE("a database from before executions were keyed by seq keeps every row, and its children") {
    // A store at schema version 10 (executions keyed by id, seq in an index of its own): two executions,
    // the second a child of the first, with actions, logs and an event.
    TempDir dir;
    const std::string path = dir.file("luaflow.db");
    write_old_store(
        path, 10,
        "INSERT INTO definitions(digest, workflow, file, source, created_at) VALUES ('d1', 'wf', 'wf.lua', "
        "'x', 0);"
        "INSERT INTO executions(id, seq, workflow, definition, status, trigger, input, shared, error, "
        "created_at, started_at, finished_at, scheduled_for, parent, scheduled_tz) VALUES "
        "('abc123', 7, 'wf', 'd1', 'running', '{\"type\":\"manual\"}', '{\"n\":1}', '{\"k\":1}', NULL, 1, 2, "
        "NULL, 3, NULL, 'Europe/Paris'), "
        "('fed987', 9, 'wf', 'd1', 'failed', '{}', '{}', '{}', 'boom', 4, 5, 6, NULL, 'abc123', NULL);"
        "INSERT INTO actions(execution_seq, name, status, output) VALUES (7, 'a', 'succeeded', '{\"n\":2}'), "
        "(7, 'b', 'pending', NULL), (9, 'a', 'failed', NULL);"
        "INSERT INTO logs(execution_id, action, attempt, time, stream, line) VALUES "
        "('abc123', 'a', 1, 10, 'log', 'hello');"
        "INSERT INTO events(workflow, execution_id, event, time, message) VALUES "
        "('wf', 'fed987', 'failure', 11, 'it failed');");

    auto opened = Db::open(path);
    REQUIRE_MESSAGE(opened, opened.error().message);
    Db& db = **opened;
    CHECK(db.schema_version() >= 11);
    auto count = [&](const char* sql) {
        Stmt::Use q(db.stmt(sql));
        REQUIRE(q.step());
        return q.int64(0);
    };
    // Nothing went with the old table, and seq is the rowid, with no index of its own.
    CHECK(count("SELECT count(*) FROM actions") == 3);
    CHECK(count("SELECT count(*) FROM logs") == 1);
    CHECK(count("SELECT count(*) FROM events") == 1);
    CHECK(count("SELECT rowid FROM executions WHERE id = 'fed987'") == 9);
    CHECK(count("SELECT count(*) FROM sqlite_master WHERE name = 'executions_seq'") == 0);
    CHECK(count("PRAGMA foreign_keys") == 1);
    auto row = find_execution(db, "abc123");
    REQUIRE(row);
    CHECK(row->seq == 7);
    CHECK(row->status == ExecStatus::running);
    CHECK(row->trigger == json{{"type", "manual"}});
    CHECK(row->input == json{{"n", 1}});
    CHECK(row->shared == json{{"k", 1}});
    CHECK(row->scheduled_for == 3);
    CHECK(row->scheduled_tz == "Europe/Paris");
    REQUIRE(row->actions.size() == 2);
    CHECK(row->actions[0].output == json{{"n", 2}});
    auto child = find_execution(db, "fed987");
    REQUIRE(child);
    CHECK(child->parent == "abc123");
    CHECK(child->error == "boom");
    CHECK(child->finished_at == 6);
    REQUIRE(children_of(db, "abc123").size() == 1);

    // New executions follow on from the highest seq; deleting one still takes its rows with it.
    CHECK(max_execution_seq(db) == 9);
    {
        db.write();
        Stmt::Use d(db.stmt("DELETE FROM executions WHERE id = 'abc123'"));
        d.run();
    }
    db.flush();
    CHECK(count("SELECT count(*) FROM actions") == 1);
    CHECK(count("SELECT count(*) FROM logs") == 0);
}
