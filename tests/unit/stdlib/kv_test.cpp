// kv.set returns only after its change is committed: the coroutine stays suspended until the commit,
// and a task cancelled while it waits is not resumed by the late commit.
#include "daemon/exec/store_key_value.hpp"
#include "daemon/store/kv.hpp"
#include "scripting/task.hpp"
#include "stdlib/stdlib.hpp"
#include "tests/unit/support/lua_sandbox.hpp"
#include "tests/unit/support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <optional>

using namespace luaflow;
using namespace luaflow::scripting;

namespace {

class KvServices final : public stdlib::Services {
  public:
    KvServices(uv_loop_t* loop, store::Db& db) : loop_(loop), kv_(db) {}
    uv_loop_t* loop() override { return loop_; }
    void log_line(const Task*, const std::string&, stdlib::LogLevel, const std::string&) override {}
    stdlib::KeyValue* kv() override { return &kv_; }

  private:
    uv_loop_t* loop_;
    exec::StoreKeyValue kv_;
};

struct Fixture : testing::LuaSandbox {
    testing::TempDir dir;
    std::unique_ptr<store::Db> db;
    std::unique_ptr<KvServices> services;

    Fixture() {
        db = std::move(store::Db::open(dir.file("luaflow.db")).value());
        services = std::make_unique<KvServices>(&loop, *db);
        open(*services);
    }
    ~Fixture() { close(); }
    // Rows as another connection sees them: only what is committed.
    std::optional<std::string> committed(const std::string& key) {
        auto other = store::Db::open(dir.file("luaflow.db"));
        REQUIRE(other);
        auto v = store::kv_get(**other, "wf", key);
        return v ? std::optional<std::string>(v->dump()) : std::nullopt;
    }
};

} // namespace

TEST_CASE("kv.set resumes the action only after the commit") {
    Fixture f;
    LuaRef fn = f.compile("kv.set('k', { n = 1 }) return kv.get('k').n");
    LuaRef arg;
    std::optional<TaskOutcome> out;
    Task t(f.state, *f.scheduler, {}, [&](Task&, const TaskOutcome& o) { out = o; });
    REQUIRE(t.start(fn, arg, 0));
    CHECK_FALSE(out);               // suspended in kv.set
    CHECK_FALSE(f.committed("k"));  // and nothing is committed yet
    uv_run(&f.loop, UV_RUN_NOWAIT); // still not: no commit ran
    CHECK_FALSE(out);
    f.db->flush(); // the turn's commit
    CHECK(f.committed("k") == R"({"n":1})");
    CHECK_FALSE(out); // resumed from a timer, not inside the commit
    while (!out)
        uv_run(&f.loop, UV_RUN_ONCE);
    CHECK(out->kind == TaskOutcome::Kind::returned);
}

TEST_CASE("a task cancelled while kv.set waits is not resumed by the commit") {
    Fixture f;
    LuaRef fn = f.compile("kv.set('k', 1) error('must not run')");
    LuaRef arg;
    std::optional<TaskOutcome> out;
    auto t = std::make_unique<Task>(f.state, *f.scheduler, TaskLabel{},
                                    [&](Task&, const TaskOutcome& o) { out = o; });
    REQUIRE(t->start(fn, arg, 0));
    t->cancel();
    t.reset();
    f.db->flush();
    uv_run(&f.loop, UV_RUN_NOWAIT);
    CHECK_FALSE(out);
    CHECK(f.committed("k") == "1"); // the write itself was made
}
