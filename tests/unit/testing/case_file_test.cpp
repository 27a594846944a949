// Test case files (SPEC 13): the cases as written, mocks as --mock reads them, and each way a file can
// be broken named with its file and line.
#include "daemon/testing/case_file.hpp"
#include "tests/unit/support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <fstream>

using namespace luaflow;
using nlohmann::json;

namespace {

std::string write_file(const std::string& dir, const std::string& name, const std::string& text) {
    std::string path = dir + "/" + name;
    std::ofstream(path) << text;
    return path;
}

} // namespace

TEST_CASE("a case file's cases, as written") {
    testing::TempDir dir;
    std::string path = write_file(dir.path(), "a.test.lua", R"(
local stock = { apples = 3 }
return tests {
  { name = "low", workflow = "inv", input = { stock = stock }, mocks = { check = { low = { "apples" } }, fetch = "error:down" },
    at = "2026-03-29T02:30:00+01:00", fast = true,
    expect = { status = "succeeded", outputs = { reorder = { orders = 1 } }, actions = {}, logs = "reorder" } },
  { workflow = "inv" },
}
)");
    auto read = testing::read_case_file(path);
    REQUIRE(std::holds_alternative<std::vector<testing::TestCase>>(read));
    const auto& cases = std::get<std::vector<testing::TestCase>>(read);
    REQUIRE(cases.size() == 2);
    const testing::TestCase& c = cases[0];
    CHECK(c.name == "low");
    CHECK(c.workflow == "inv");
    CHECK(c.line == 3);
    CHECK(c.input == json{{"stock", {{"apples", 3}}}});
    CHECK(c.mocks.at("check").output == json{{"low", {"apples"}}});
    CHECK_FALSE(c.mocks.at("fetch").output);
    CHECK(c.mocks.at("fetch").error == "down");
    CHECK(c.at == 1774747800000);
    CHECK(c.fast);
    CHECK(c.expect["logs"] == json{"reorder"});
    CHECK(c.expect["actions"] == json::object());
    CHECK(cases[1].name == "case 2");
    CHECK(cases[1].expect == json::object());
}

TEST_CASE("a broken case file names its file and line") {
    testing::TempDir dir;
    struct Broken {
        const char* text;
        int line;
        const char* message;
    };
    for (const Broken& b : {
             Broken{"return tests {\n  { workflow = 'x' }\n  { }\n}\n", 3, "'}' expected"},
             Broken{"\nreturn tests { { workflow = 'x', at = 'soon' } }\n", 2,
                    "'at' is not an RFC 3339 time"},
             Broken{"return tests { { workflow = 'x', fast = 1 } }\n", 1, "'fast' must be true or false"},
             Broken{"return tests { { workflow = 'x', expect = { outputs = 1 } } }\n", 1,
                    "'expect.outputs' must be"},
             Broken{"return tests { { workflow = 'x', expect = { nope = 1 } } }\n", 1,
                    "unknown expectation 'expect.nope'"},
             Broken{"return tests { { workflow = 'x', expect = { logs = { 1 } } } }\n", 1, "list of strings"},
             Broken{"return tests { 5 }\n", 1, "case 1: a case must be a table"},
             Broken{"return tests { { workflow = 'x', input = function() end } }\n", 1,
                    "cannot encode a function"},
             Broken{"os.execute('true')\n", 1, "attempt to call field 'execute'"},
             Broken{"return {}\n", 0, "must return tests"},
         }) {
        std::string text = b.text;
        CAPTURE(text);
        std::string path = write_file(dir.path(), "b.test.lua", b.text);
        auto read = testing::read_case_file(path);
        REQUIRE(std::holds_alternative<testing::CaseFileError>(read));
        const auto& e = std::get<testing::CaseFileError>(read);
        CHECK(e.file == path);
        CHECK(e.line == b.line);
        CHECK(e.message.find(b.message) != std::string::npos);
    }
}

TEST_CASE("case files are tests/*.test.lua, sorted") {
    testing::TempDir dir;
    std::filesystem::create_directories(dir.path() + "/tests");
    write_file(dir.path(), "tests/b.test.lua", "");
    write_file(dir.path(), "tests/a.test.lua", "");
    write_file(dir.path(), "tests/helper.lua", "");
    write_file(dir.path(), "c.test.lua", "");
    CHECK(testing::case_files(dir.path()) ==
          std::vector<std::string>{dir.path() + "/tests/a.test.lua", dir.path() + "/tests/b.test.lua"});
    CHECK(testing::case_files(dir.path() + "/none").empty());
}

TEST_CASE("a mock is an output, or error:MESSAGE") {
    CHECK(testing::mock_from(json{{"a", 1}}).output == json{{"a", 1}});
    CHECK(testing::mock_from("error:down").error == "down");
    CHECK_FALSE(testing::mock_from("error:down").output);
    CHECK(testing::mock_from("fine").output == json("fine"));
}
