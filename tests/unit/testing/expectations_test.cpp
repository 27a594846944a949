// A test case's expectations against a report (SPEC 13): subset matching of outputs with the path of the
// first difference, statuses, the error as a Lua pattern (the execution's or a failed action's), log
// substrings, and success expected when a case says nothing of the status.
#include "daemon/testing/expectations.hpp"

#include <doctest/doctest.h>

using namespace luaflow;
using nlohmann::json;

namespace {

json report(const std::string& status, json actions, json error = nullptr) {
    return {{"status", status}, {"actions", std::move(actions)}, {"error", std::move(error)}};
}

} // namespace

TEST_CASE("a table matches when every key it lists matches") {
    json got = {{"orders", 2}, {"items", {"a", "b"}}, {"meta", {{"by", "x"}, {"n", 1.0}}}};
    CHECK_FALSE(testing::first_mismatch({{"orders", 2}}, got, "outputs.r"));
    CHECK_FALSE(testing::first_mismatch({{"meta", {{"n", 1}}}}, got, "outputs.r")); // 1 == 1.0
    CHECK_FALSE(testing::first_mismatch(json::array(), got, "outputs.r"));          // {} lists nothing
    CHECK(*testing::first_mismatch({{"orders", 1}}, got, "outputs.r") == "outputs.r.orders: want 1, got 2");
    CHECK(*testing::first_mismatch({{"missing", true}}, got, "outputs.r") ==
          "outputs.r.missing: want true, got nothing");
    CHECK(*testing::first_mismatch({{"meta", {{"by", "y"}}}}, got, "o") ==
          "o.meta.by: want \"y\", got \"x\"");
    // Lists: the same length, item by item (1-based, as Lua counts).
    CHECK(*testing::first_mismatch({{"items", {"a"}}}, got, "o") ==
          "o.items: want 1 items, got 2 ([\"a\",\"b\"])");
    CHECK(*testing::first_mismatch({{"items", {"a", "c"}}}, got, "o") == "o.items[2]: want \"c\", got \"b\"");
    CHECK(*testing::first_mismatch({{"orders", {{"n", 1}}}}, got, "o") == "o.orders: want a table, got 2");
    CHECK(*testing::first_mismatch("2", 2, "o") == "o: want \"2\", got 2");
}

TEST_CASE("every expectation kind, passing and failing") {
    json r = report("failed",
                    {{"check", {{"status", "failed"}, {"error", "stock service unreachable"}}},
                     {"reorder", {{"status", "skipped"}}},
                     {"count", {{"status", "succeeded"}, {"output", {{"n", 3}}}}}},
                    "action 'check' failed");
    std::vector<std::string> logs = {"checking stock", "reorder apples"};
    CHECK(testing::check_expectations({{"status", "failed"},
                                       {"error", "unreachable$"},
                                       {"actions", {{"reorder", "skipped"}}},
                                       {"outputs", {{"count", {{"n", 3}}}}},
                                       {"logs", {"reorder app"}}},
                                      r, logs)
              .empty());
    auto f = testing::check_expectations({{"status", "succeeded"},
                                          {"outputs", {{"reorder", {{"orders", 1}}}, {"nope", 1}}},
                                          {"actions", {{"check", "succeeded"}}},
                                          {"error", "^disk"},
                                          {"logs", {"no such"}}},
                                         r, logs);
    REQUIRE(f.size() == 6);
    CHECK(f[0] == "status: want \"succeeded\", got \"failed\" (action 'check' failed)");
    CHECK(f[1] == "outputs.nope: the workflow has no action 'nope'");
    CHECK(f[2] == "outputs.reorder: want {\"orders\":1}, got nothing (the action skipped)");
    CHECK(f[3] == "actions.check: want \"succeeded\", got \"failed\" (stock service unreachable)");
    CHECK(f[4] == "error: want one matching \"^disk\", got \"action 'check' failed\" (and 1 action errors)");
    CHECK(f[5] == "logs: no line contains \"no such\" (2 lines)");
    // A case that says nothing of the status expects success.
    CHECK(testing::check_expectations(json::object(), r, {}) ==
          std::vector<std::string>{"status: want \"succeeded\", got \"failed\" (action 'check' failed)"});
    // A pattern that is not one is named; no error at all is said so.
    CHECK(testing::check_expectations({{"status", "failed"}, {"error", "(("}}, r, {})[0].find(
              "not a Lua pattern") != std::string::npos);
    CHECK(testing::check_expectations({{"error", "x"}}, report("succeeded", json::object()), {}) ==
          std::vector<std::string>{"error: want one matching \"x\", got none"});
    CHECK(testing::check_expectations(json::object(), nullptr, {}) ==
          std::vector<std::string>{"the execution did not run"});
}
