#pragma once
// Test case files, `tests/NAME.test.lua` in the workflows directory (SPEC 13): a Lua chunk that returns
// `tests { case, ... }`. Read in a Lua state of their own with only the pure parts of the standard
// library: a test file describes runs, it does not make them.
#include "common/result.hpp"
#include "common/time_format.hpp"

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace luaflow::testing {

// A mock as `--mock ACTION=...` says it: a pinned output, or (a string "error:MESSAGE") a failure.
struct MockSpec {
    std::optional<nlohmann::json> output;
    std::string error;
};

// "error:MESSAGE" fails with MESSAGE; any other value is the output.
MockSpec mock_from(const nlohmann::json& value);

struct TestCase {
    std::string file; // the case file, and the line of its `tests {` call
    int line = 0;
    std::string name;
    std::string workflow;
    nlohmann::json input = nlohmann::json::object();
    std::map<std::string, MockSpec> mocks;
    std::optional<UnixMillis> at;
    bool fast = false;
    nlohmann::json expect = nlohmann::json::object(); // status, outputs, actions, error, logs
};

struct CaseFileError {
    std::string file;
    int line = 0;
    std::string message;
};

// The cases of one file, in order, or what makes it unusable (a syntax error, a field of the wrong
// type, a case without a workflow), naming file:line.
std::variant<std::vector<TestCase>, CaseFileError> read_case_file(const std::string& path);

// The case files of a workflows directory, `tests/*.test.lua`, sorted.
std::vector<std::string> case_files(const std::string& workflows_dir);

} // namespace luaflow::testing
