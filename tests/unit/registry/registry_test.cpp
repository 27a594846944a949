// The registry of workflow files: one look at a time on the thread pool, the check handed in by the
// engine, hot reload. Against a real loop, a real directory and a real SQLite store.
#include "daemon/registry/registry.hpp"
#include "daemon/store/commit_pump.hpp"
#include "daemon/store/db.hpp"
#include "tests/unit/support/temp_dir.hpp"
#include "tests/unit/support/test_loop.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

using namespace luaflow;
using luaflow::testing::Loop;
using luaflow::testing::TempDir;

namespace {

const char* kOk = "return workflow { description = '%s', actions = { a = { run = function() end } } }\n";

std::string ok(const std::string& description) {
    std::string s = kOk;
    return s.replace(s.find("%s"), 2, description);
}

struct Fixture {
    Loop l;
    TempDir dir;
    std::string workflows = dir.file("workflows");
    std::unique_ptr<store::Db> db;
    std::unique_ptr<store::CommitPump> pump;
    std::unique_ptr<registry::Registry> registry;
    std::vector<std::string> refused; // ids the check was asked about and refused

    explicit Fixture(registry::Registry::Check check = nullptr) {
        std::filesystem::create_directories(workflows);
        db = std::move(store::Db::open(dir.file("luaflow.db")).value());
        pump = std::make_unique<store::CommitPump>(&l.uv, *db);
        registry = std::make_unique<registry::Registry>(
            &l.uv, *db, workflows,
            [](const std::string&) {
                scripting::SandboxOptions o;
                o.memory_limit = 8u << 20;
                return o;
            },
            std::move(check));
    }
    ~Fixture() {
        registry.reset();
        pump.reset();
        l.run_until([] { return false; }, 50); // let libuv close the watchers
    }
    void write(const std::string& name, const std::string& text) {
        std::ofstream(workflows + "/" + name) << text;
    }
    std::string description(const std::string& id) {
        const registry::WorkflowEntry* e = registry->find(id);
        return e && e->def ? e->def->description : "";
    }
};

} // namespace

TEST_CASE("registry: the first load reads the directory on the pool and reports what failed") {
    Fixture f;
    f.write("good.lua", ok("one"));
    f.write("bad.lua", "return workflow {");
    registry::ReloadReport r = registry::first_load(*f.registry, &f.l.uv);
    CHECK(r.workflows == 1);
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].file == f.workflows + "/bad.lua");
    CHECK(f.description("good") == "one");
}

TEST_CASE("registry: requests while a look is out are served by the next look, a forced one reloading all") {
    Fixture f;
    f.write("a.lua", ok("v1"));
    registry::first_load(*f.registry, &f.l.uv);
    f.write("a.lua", ok("v2"));
    std::vector<std::string> order;
    // The first look is out on the pool when the other two come: they share the next look.
    f.registry->reload(false, [&](const registry::ReloadReport&) { order.push_back("first"); });
    f.registry->reload(true, [&](const registry::ReloadReport& r) {
        order.push_back("forced");
        CHECK(r.workflows == 1);
    });
    f.registry->reload(false, [&](const registry::ReloadReport&) { order.push_back("third"); });
    REQUIRE(f.l.run_until([&] { return order.size() == 3; }, 10'000));
    CHECK(order == std::vector<std::string>{"first", "forced", "third"});
    CHECK(f.description("a") == "v2");
}

TEST_CASE("registry: the check handed in refuses a definition, and the last good version stays") {
    bool refuse = false;
    Fixture f([&](const scripting::WorkflowDef& def) -> std::optional<scripting::LoadError> {
        if (!refuse) return std::nullopt;
        return scripting::LoadError{def.file, 1, "refused by the check"};
    });
    f.write("a.lua", ok("kept"));
    CHECK(registry::first_load(*f.registry, &f.l.uv).errors.empty());
    refuse = true;
    f.write("a.lua", ok("refused"));
    std::optional<registry::ReloadReport> r;
    f.registry->reload(true, [&](const registry::ReloadReport& rep) { r = rep; });
    REQUIRE(f.l.run_until([&] { return r.has_value(); }, 10'000));
    REQUIRE(r->errors.size() == 1);
    CHECK(r->errors[0].message == "refused by the check");
    CHECK(f.description("a") == "kept");
}

TEST_CASE("registry: a watched change loads within a second, and on_change names it") {
    Fixture f;
    f.write("a.lua", ok("v1"));
    registry::first_load(*f.registry, &f.l.uv);
    std::vector<std::string> changed;
    f.registry->on_change = [&](const std::vector<std::string>& ids) {
        changed.insert(changed.end(), ids.begin(), ids.end());
    };
    f.registry->watch();
    f.write("b.lua", ok("new"));
    REQUIRE(f.l.run_until([&] { return !changed.empty(); }, 2'000));
    CHECK(changed == std::vector<std::string>{"b"});
    CHECK(f.description("b") == "new");
}
