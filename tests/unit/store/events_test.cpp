// Events: recorded per workflow or execution, listed newest first, aged out by retention.
#include "daemon/store/events.hpp"
#include "tests/unit/support/temp_dir.hpp"

#include <doctest/doctest.h>

using namespace luaflow;

TEST_CASE("workflow events are listed newest first and pruned by age") {
    testing::TempDir dir;
    auto db = std::move(store::Db::open(dir.file("luaflow.db")).value());
    store::record_event(db->write(),
                        {"wf", std::nullopt, Event::skipped, 1000, 3, "3 missed occurrence(s) skipped"});
    store::record_event(db->write(), {"wf", std::nullopt, Event::skipped, 5000, 1, "occurrence skipped"});
    store::record_event(db->write(), {"other", std::nullopt, Event::skipped, 6000, 1, "not this one"});
    db->flush();
    auto events = store::workflow_events(*db, "wf", 10);
    REQUIRE(events.size() == 2);
    CHECK(events[0]["message"] == "occurrence skipped");
    CHECK(events[1]["count"] == 3);
    CHECK(events[1]["execution"].is_null());
    store::prune_events(db->write(), 2000);
    db->flush();
    CHECK(store::workflow_events(*db, "wf", 10).size() == 1);
    CHECK(store::workflow_events(*db, "other", 10).size() == 1);
}
