// Definitions keep the files they use beside the workflow file, each text once (issue 7, item 5).
#include "daemon/store/db.hpp"
#include "daemon/store/definitions.hpp"
#include "tests/unit/support/temp_dir.hpp"

#include <doctest/doctest.h>

using namespace luaflow;
using namespace luaflow::store;
using luaflow::testing::TempDir;

namespace {

std::int64_t count(Db& db, const char* sql) {
    Stmt::Use q(db.stmt(sql));
    return q.step() ? q.int64(0) : -1;
}

} // namespace

TEST_CASE("a definition comes back with its scripts and lib/ modules, across a reopen") {
    TempDir dir;
    std::string path = dir.file("luaflow.db");
    {
        auto db = std::move(Db::open(path).value());
        Definition a{"wf",
                     "wf.lua",
                     "return workflow {}",
                     {{"steps/a.lua", "return 1"}},
                     FileTexts{{"lib/fmt.lua", "return {}"}, {"lib/text/up.lua", "return string.upper"}}};
        Definition b = a;
        b.source = "return workflow { }";
        insert_definition(db->write(), "da", a);
        insert_definition(db->write(), "db", b);
        // The same digest again is left as it is.
        Definition other = a;
        other.source = "something else";
        insert_definition(db->write(), "da", other);
        db->flush();
        // Three distinct texts, each kept once, although two definitions use them.
        CHECK(count(*db, "SELECT count(*) FROM sources") == 3);
        CHECK(count(*db, "SELECT count(*) FROM definitions") == 2);
    }
    auto db = std::move(Db::open(path).value());
    auto a = find_definition(*db, "da");
    REQUIRE(a);
    CHECK(a->source == "return workflow {}");
    CHECK(a->scripts == FileTexts{{"steps/a.lua", "return 1"}});
    REQUIRE(a->lib);
    CHECK(a->lib->at("lib/text/up.lua") == "return string.upper");
    CHECK(a->lib->size() == 2);
    CHECK_FALSE(find_definition(*db, "nope"));
}

TEST_CASE("a definition stored before the files were kept has no lib/ of its own") {
    TempDir dir;
    auto db = std::move(Db::open(dir.file("luaflow.db")).value());
    db->write();
    {
        Stmt::Use q(db->stmt("INSERT INTO definitions(digest, workflow, file, source, created_at) "
                             "VALUES ('old', 'wf', 'wf.lua', 'return workflow {}', 0)"));
        q.run();
    }
    db->flush();
    auto old = find_definition(*db, "old");
    REQUIRE(old);
    CHECK(old->scripts.empty());
    CHECK_FALSE(old->lib);
}
