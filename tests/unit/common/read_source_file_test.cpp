// Source files of the workflows directory (issue 14, item 7): only regular files, bounded, never blocking.
#include "common/read_source_file.hpp"
#include "tests/unit/support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

using namespace luaflow;
using luaflow::testing::TempDir;

TEST_CASE("issue 14: a FIFO named as a source file is refused at once, naming it") {
    TempDir dir;
    std::string fifo = dir.file("pipe.lua");
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    auto r = read_source_file(fifo); // with no writer, a plain open would block here for ever
    REQUIRE_FALSE(r);
    CHECK(r.error().message == fifo + ": is a FIFO, not read");
}

TEST_CASE("issue 14: a device behind a symlink and a directory are refused, naming them") {
    TempDir dir;
    std::string zero = dir.file("zero.lua");
    REQUIRE(::symlink("/dev/zero", zero.c_str()) == 0);
    auto r = read_source_file(zero);
    REQUIRE_FALSE(r);
    CHECK(r.error().message == zero + ": is a character device, not read");
    auto d = read_source_file(dir.path());
    REQUIRE_FALSE(d);
    CHECK(d.error().message == dir.path() + ": is a directory, not read");
}

TEST_CASE("issue 14: a source file over the limit is refused naming its size and the limit") {
    TempDir dir;
    std::string big = dir.file("big.lua");
    std::ofstream(big) << std::string(2048, '-');
    auto r = read_source_file(big, 1024);
    REQUIRE_FALSE(r);
    CHECK(r.error().message == big + ": is 2 KiB, larger than the limit of 1 KiB; not read");
    auto whole = read_source_file(big, 2048);
    REQUIRE(whole);
    CHECK(whole->size() == 2048);
}

TEST_CASE("a regular source file, through a symlink too, is read whole; a missing one says why") {
    TempDir dir;
    std::string file = dir.file("a.lua");
    std::ofstream(file) << "return 1\n";
    std::string link = dir.file("b.lua");
    REQUIRE(::symlink(file.c_str(), link.c_str()) == 0);
    CHECK(read_source_file(file).value() == "return 1\n");
    CHECK(read_source_file(link).value() == "return 1\n");
    CHECK(read_source_file(dir.file("empty.lua")).error().message ==
          dir.file("empty.lua") + ": cannot open the file: No such file or directory");
}
