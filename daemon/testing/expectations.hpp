#pragma once
// What a test case expects of its run (SPEC 13), checked against the execution's report and log lines.
// Every difference is listed, first the status, then outputs, actions, the error and logs, each naming
// where it is: `outputs.reorder.orders: want 1, got 0`.
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace luaflow::testing {

// `expect` as a case file gives it; `report` the inspect document (null when it did not run); `logs`
// the run's log lines.
std::vector<std::string> check_expectations(const nlohmann::json& expect, const nlohmann::json& report,
                                            const std::vector<std::string>& logs);

// Where `want` is not matched by `got`, or nothing: a table matches when every key it lists matches, a
// list a list of the same length whose items match, numbers by value, the rest by equality.
std::optional<std::string> first_mismatch(const nlohmann::json& want, const nlohmann::json& got,
                                          const std::string& path);

} // namespace luaflow::testing
