// The cache of workflow states (registry/code_cache): one state per definition while in use, none for
// an idle one, a new one for a new definition.
#include "daemon/registry/code_cache.hpp"

#include "scripting/workflow_loader.hpp"
#include "tests/unit/support/test_loop.hpp"

#include <doctest/doctest.h>

using namespace luaflow;
using scripting::WorkflowCode;
using scripting::WorkflowDef;

namespace {

std::shared_ptr<WorkflowDef> definition(const std::string& source) {
    auto r = scripting::load_workflow("wf", "wf.lua", source, scripting::SandboxOptions{});
    REQUIRE(std::holds_alternative<std::shared_ptr<WorkflowDef>>(r));
    auto def = std::get<std::shared_ptr<WorkflowDef>>(r);
    def->code.reset(); // as the registry keeps it
    return def;
}

struct Fixture {
    testing::Loop l;
    int builds = 0;
    registry::CodeCache cache{&l.uv,
                              [this](const WorkflowDef& d) {
                                  ++builds;
                                  return scripting::load_code(d, scripting::SandboxOptions{});
                              },
                              40};
};

} // namespace

TEST_CASE("the first use builds the state; the next ones share it") {
    Fixture f;
    auto def = definition("return workflow { actions = { a = { run = function() end } } }");
    auto one = f.cache.acquire(def);
    REQUIRE(one);
    CHECK(one.value()->lua);
    auto two = f.cache.acquire(def);
    CHECK(two.value() == one.value());
    CHECK(f.builds == 1);
    CHECK(f.cache.size() == 1);
    // A definition that keeps its own code (one loaded for a single use) is served that.
    auto own = std::make_shared<WorkflowDef>(*def);
    own->code = one.value();
    CHECK(f.cache.acquire(own).value() == one.value());
    CHECK(f.builds == 1);
}

TEST_CASE("a state nobody holds is dropped once unused for the keep time; a held one stays") {
    Fixture f;
    auto idle = definition("return workflow { actions = { a = { run = function() end } } }");
    auto busy = definition("return workflow { actions = { b = { run = function() end } } }");
    std::weak_ptr<const WorkflowCode> idle_code = f.cache.acquire(idle).value();
    std::shared_ptr<const WorkflowCode> held = f.cache.acquire(busy).value(); // an execution holds it
    CHECK(!idle_code.expired());
    f.cache.sweep(); // too soon
    CHECK(f.cache.size() == 2);
    CHECK(f.l.run_until([&] { return idle_code.expired(); }, 2000));
    CHECK(f.cache.size() == 1);
    CHECK(f.cache.acquire(busy).value() == held);
    held.reset();
    CHECK(f.l.run_until([&] { return f.cache.size() == 0; }, 2000));
    // Used again: built again.
    CHECK(f.cache.acquire(idle));
    CHECK(f.builds == 3);
    f.cache.sweep();
}

TEST_CASE("a new definition gets a new state; the old one's goes with it") {
    Fixture f;
    auto v1 = definition("return workflow { actions = { a = { run = function() end } } }");
    auto c1 = f.cache.acquire(v1).value();
    auto v2 = definition("return workflow { actions = { a = { run = function() return 2 end } } }");
    auto c2 = f.cache.acquire(v2).value();
    CHECK(c1 != c2);
    CHECK(f.cache.size() == 2);
    v1.reset();
    c1.reset();
    f.cache.sweep();
    CHECK(f.cache.size() == 1);
}
