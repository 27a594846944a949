#include "common/bounded_read.hpp"
#include "tests/unit/support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <fstream>

using namespace luaflow;
using luaflow::testing::TempDir;

TEST_CASE("--input-file /dev/zero ends: an endless source is refused past the limit") {
    auto r = read_bounded("/dev/zero", 1024, "input file /dev/zero");
    REQUIRE_FALSE(r);
    CHECK(r.error().message == "input file /dev/zero: larger than 1 KiB");
}

TEST_CASE("a regular file over the limit is refused naming its size, before it is read") {
    TempDir dir;
    std::string path = dir.file("big.json");
    std::ofstream(path) << std::string(2560, 'x');
    auto r = read_bounded(path, 1024, "input file " + path);
    REQUIRE_FALSE(r);
    CHECK(r.error().message == "input file " + path + " is 2.5 KiB; the limit is 1 KiB");
    auto whole = read_bounded(path, 2560, "input file");
    REQUIRE(whole);
    CHECK(whole->size() == 2560);
}

TEST_CASE("a file that cannot be read says why") {
    auto r = read_bounded("/nonexistent/input.json", 1024, "input file /nonexistent/input.json");
    REQUIRE_FALSE(r);
    CHECK(r.error().message == "cannot read input file /nonexistent/input.json: No such file or directory");
    auto dir = read_bounded("/", 1024, "input file /");
    REQUIRE_FALSE(dir);
    CHECK(dir.error().message == "cannot read input file /: Is a directory");
}
