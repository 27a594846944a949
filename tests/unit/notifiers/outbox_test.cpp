// The outbox: which notifiers the rules name, what a row holds, the backoff, and a delivery that keeps
// failing until 24 h after its row was written, then fails for good.
#include "common/time_format.hpp"
#include "daemon/store/commit_pump.hpp"
#include "daemon/store/notifications.hpp"
#include "notifiers/outbox.hpp"
#include "tests/unit/support/temp_dir.hpp"
#include "tests/unit/support/test_loop.hpp"

#include <doctest/doctest.h>

using namespace luaflow;
using nlohmann::json;

namespace {

struct Rig {
    testing::TempDir dir;
    testing::Loop loop;
    std::unique_ptr<store::Db> db = std::move(store::Db::open(dir.file("luaflow.db")).value());
    std::unique_ptr<store::CommitPump> pump = std::make_unique<store::CommitPump>(&loop.uv, *db);
    config::Config cfg;
    std::unique_ptr<notifiers::Outbox> outbox;

    Rig() {
        // Port 9 (discard) has no listener here: each attempt is refused at once.
        for (const char* name : {"a", "b", "c"}) {
            config::NotifierConfig n;
            n.url = "http://127.0.0.1:9/hook";
            cfg.notifiers[name] = n;
        }
        cfg.notify = {{"failure", {"a", "b"}}};
        outbox = std::make_unique<notifiers::Outbox>(&loop.uv, *db, cfg);
    }
    ~Rig() {
        outbox.reset();
        pump.reset();
    }
    json rows() {
        json out = json::array();
        store::Stmt::Use q(db->stmt(
            "SELECT notifier, event, status, attempts, error, message FROM notifications ORDER BY id"));
        while (q.step())
            out.push_back({{"notifier", q.text(0)},
                           {"event", q.text(1)},
                           {"status", q.text(2)},
                           {"attempts", q.int64(3)},
                           {"error", q.is_null(4) ? json() : json(q.text(4))},
                           {"message", json::parse(q.text(5))}});
        return out;
    }
};

notifiers::Message failure(std::int64_t at = 0) {
    notifiers::Message m;
    m.event = "failure";
    m.workflow = "wf";
    m.execution = "e1";
    m.status = "failed";
    m.time_ms = at;
    return m;
}

} // namespace

TEST_CASE("notifiers: the retry delay doubles from 1 s and stays at 1 h") {
    CHECK(notifiers::retry_delay(1) == 1000);
    CHECK(notifiers::retry_delay(2) == 2000);
    CHECK(notifiers::retry_delay(5) == 16'000);
    CHECK(notifiers::retry_delay(12) == 2'048'000);
    CHECK(notifiers::retry_delay(13) == 3'600'000);
    CHECK(notifiers::retry_delay(1000) == 3'600'000);
}

TEST_CASE("notifiers: the config's rules and a workflow's add up, each notifier once") {
    Rig r;
    CHECK(r.outbox->targets(Event::failure, json{{"failure", {"b", "c"}}}) ==
          std::vector<std::string>{"a", "b", "c"});
    CHECK(r.outbox->targets(Event::success, json{{"failure", {"c"}}}).empty());
    CHECK(r.outbox->targets(Event::success, json{{"success", {"c", "c"}}}) == std::vector<std::string>{"c"});
}

TEST_CASE("notifiers: a raise writes one row per notifier, with its own id, in the caller's transaction") {
    Rig r;
    r.outbox->raise(r.db->write(), Event::failure, json{{"failure", {"b", "c"}}}, failure(1000));
    CHECK(r.db->in_write()); // not committed by the outbox itself
    r.db->flush();
    json rows = r.rows();
    REQUIRE(rows.size() == 3);
    CHECK(rows[0]["notifier"] == "a");
    CHECK(rows[2]["notifier"] == "c");
    CHECK(rows[0]["status"] == "pending");
    CHECK(rows[0]["message"]["workflow"] == "wf");
    CHECK(rows[0]["message"]["id"].get<std::string>().size() == 32);
    CHECK(rows[0]["message"]["id"] != rows[1]["message"]["id"]);
    CHECK(store::execution_notifications(*r.db, "e1").size() == 3);
    // notify() names one notifier, which must exist.
    auto bad = r.outbox->notify(r.db->write(), "ops", failure());
    REQUIRE(!bad);
    CHECK(bad.error().message == "no notifier 'ops' in the config (it has a, b, c)");
}

TEST_CASE("notifiers: luaflowctl test's outbox records, never sends, and takes any notifier") {
    Rig r;
    r.outbox->record_only();
    r.outbox->start(); // does nothing in this mode
    REQUIRE(r.outbox->notify(r.db->write(), "not-in-config", failure()));
    r.db->flush();
    r.loop.run_until([] { return false; }, 200);
    json rows = r.rows();
    REQUIRE(rows.size() == 1);
    CHECK(rows[0]["status"] == "recorded");
    CHECK(rows[0]["attempts"] == 0);
}

TEST_CASE("notifiers: a failed attempt is retried later, and a row older than 24 h fails for good") {
    Rig r;
    r.outbox->start();
    std::int64_t now = now_unix_ms();
    REQUIRE(r.outbox->notify(r.db->write(), "a", failure(now))); // fresh: retried
    REQUIRE(r.outbox->notify(r.db->write(), "b",
                             failure(now - 86'400'000 + 500))); // its next try would be past 24 h
    REQUIRE(r.loop.run_until([&] {
        json rows = r.rows();
        return rows[0]["attempts"] == 1 && rows[1]["status"] == "failed";
    }));
    json rows = r.rows();
    CHECK(rows[0]["status"] == "pending");
    CHECK(rows[0]["error"].get<std::string>().find("127.0.0.1") != std::string::npos); // curl's own words
    CHECK(rows[1]["error"].get<std::string>().rfind("gave up after 1 attempt(s) over ", 0) == 0);
    CHECK(r.outbox->counts().at("a").retried == 1);
    CHECK(r.outbox->counts().at("a").pending == 1);
    CHECK(r.outbox->counts().at("b").failed == 1);
    CHECK(r.outbox->counts().at("b").pending == 0);
    // The second attempt comes about 1 s after the first.
    REQUIRE(r.loop.run_until([&] { return r.rows()[0]["attempts"] == 2; }, 5000));
    r.outbox->stop();
}

TEST_CASE("notifiers: a notifier gone from the config fails its pending rows at the reload") {
    Rig r;
    REQUIRE(r.outbox->notify(r.db->write(), "c", failure(now_unix_ms() + 3'600'000))); // not due for an hour
    r.db->flush();
    r.outbox->start();
    r.cfg.notifiers.erase("c");
    r.outbox->apply_config();
    r.db->flush();
    json rows = r.rows();
    CHECK(rows[0]["status"] == "failed");
    CHECK(rows[0]["error"] == "no notifier 'c' in the config any more");
    r.outbox->stop();
}
