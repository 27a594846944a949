// The file work behind fs.*, on real directories and symlinks, with openat2 and with the realpath
// fallback used where the kernel refuses openat2.
#include "stdlib/fs_ops.hpp"
#include "tests/unit/support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

using namespace luaflow;
using namespace luaflow::stdlib;
namespace fs = std::filesystem;

namespace {

struct Sandbox {
    testing::TempDir dir;
    std::string root = dir.file("root");
    std::string scratch = dir.file("root/scratch");
    std::string outside = dir.file("outside");
    Sandbox() {
        fs::create_directories(root + "/sub");
        fs::create_directories(outside);
        spit(root + "/sub/in.txt", "inside");
        spit(outside + "/secret.txt", "secret");
        fs::create_directory_symlink(outside, root + "/out");          // absolute, leads out
        fs::create_directory_symlink("../outside", root + "/rel_out"); // relative, leads out
        fs::create_directory_symlink("sub", root + "/rel_in");         // relative, stays in
        fs::create_directory_symlink(root + "/sub", root + "/abs_in"); // absolute, stays in
        fs::create_symlink(outside + "/secret.txt", root + "/secret_link");
        fs::create_symlink("sub/in.txt", root + "/in_link");
        fs::create_symlink("sub/nothing.txt", root + "/dangling");
    }
    FsTarget at(const std::string& rel, const char* fn = "fs.read") const {
        FsTarget t;
        t.fn = fn;
        t.shown = rel;
        t.root = root;
        t.rel = rel;
        return t;
    }
    static void spit(const std::string& path, const std::string& text) { std::ofstream(path) << text; }
    static std::string slurp(const std::string& path) {
        std::ifstream in(path);
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }
};

const FsResolver kResolvers[] = {FsResolver::automatic, FsResolver::realpath_only};

std::string read_ok(const Sandbox& s, const std::string& rel, FsResolver r) {
    auto got = fs_read_file(s.at(rel), 1 << 20, "the cap", r);
    REQUIRE_MESSAGE(got, got.error().message);
    return *got;
}

std::string read_error(const Sandbox& s, const std::string& rel, FsResolver r) {
    auto got = fs_read_file(s.at(rel), 1 << 20, "the cap", r);
    REQUIRE_FALSE(got);
    return got.error().message;
}

} // namespace

TEST_CASE("fs ops: symlinks that stay in the root are followed, ones that lead out are refused") {
    Sandbox s;
    for (FsResolver r : kResolvers) {
        CAPTURE(static_cast<int>(r));
        CHECK(read_ok(s, "sub/in.txt", r) == "inside");
        CHECK(read_ok(s, "rel_in/in.txt", r) == "inside");
        CHECK(read_ok(s, "abs_in/in.txt", r) == "inside"); // RESOLVE_BENEATH alone refuses absolute links
        CHECK(read_ok(s, "in_link", r) == "inside");
        const std::string escape = " is outside the sandbox: a symlink on the way leads out of " + s.root;
        CHECK(read_error(s, "out/secret.txt", r) == "fs.read: out/secret.txt" + escape);
        CHECK(read_error(s, "rel_out/secret.txt", r) == "fs.read: rel_out/secret.txt" + escape);
        CHECK(read_error(s, "secret_link", r) == "fs.read: secret_link" + escape);
        CHECK(read_error(s, "missing.txt", r) == "fs.read: missing.txt: No such file or directory");
        CHECK(read_error(s, "sub", r) == "fs.read: sub: Is a directory");

        auto listed = fs_list_dir(s.at("out", "fs.list"), r);
        REQUIRE_FALSE(listed);
        CHECK(listed.error().message == "fs.list: out" + escape);
        auto inside = fs_list_dir(s.at("rel_in", "fs.list"), r);
        REQUIRE(inside);
        CHECK(*inside == std::vector<std::string>{"in.txt"});

        auto written = fs_write_file(s.at("out/new.txt", "fs.write"), "x", r);
        REQUIRE_FALSE(written);
        CHECK(written.error().message == "fs.write: out/new.txt" + escape);
        CHECK_FALSE(fs::exists(s.outside + "/new.txt"));
        auto nested = fs_write_file(s.at("out/deeper/new.txt", "fs.write"), "x", r);
        REQUIRE_FALSE(nested);
        CHECK_FALSE(fs::exists(s.outside + "/deeper"));
        auto through = fs_write_file(s.at("secret_link", "fs.write"), "overwritten", r);
        REQUIRE_FALSE(through);
        CHECK(Sandbox::slurp(s.outside + "/secret.txt") == "secret");
    }
}

TEST_CASE("fs ops: write replaces atomically, makes parents, keeps the mode, writes through inner links") {
    Sandbox s;
    for (FsResolver r : kResolvers) {
        CAPTURE(static_cast<int>(r));
        REQUIRE(fs_write_file(s.at("a/b/c.txt", "fs.write"), std::string("one\0two", 7), r));
        CHECK(Sandbox::slurp(s.root + "/a/b/c.txt") == std::string("one\0two", 7));
        ::chmod((s.root + "/a/b/c.txt").c_str(), 0600);
        REQUIRE(fs_write_file(s.at("a/b/c.txt", "fs.write"), "three", r));
        CHECK(Sandbox::slurp(s.root + "/a/b/c.txt") == "three");
        CHECK((fs::status(s.root + "/a/b/c.txt").permissions() & fs::perms::all) ==
              (fs::perms::owner_read | fs::perms::owner_write));
        auto names = fs_list_dir(s.at("a/b", "fs.list"), r);
        REQUIRE(names);
        CHECK(*names == std::vector<std::string>{"c.txt"}); // no temp file left behind

        REQUIRE(fs_write_file(s.at("in_link", "fs.write"), "via link", r));
        CHECK(fs::is_symlink(s.root + "/in_link")); // the link stays, the file it names is replaced
        CHECK(Sandbox::slurp(s.root + "/sub/in.txt") == "via link");
        REQUIRE(fs_write_file(s.at("abs_in/made.txt", "fs.write"), "m", r));
        CHECK(Sandbox::slurp(s.root + "/sub/made.txt") == "m");

        auto dangling = fs_write_file(s.at("dangling", "fs.write"), "x", r);
        REQUIRE_FALSE(dangling);
        CHECK(dangling.error().message == "fs.write: dangling is a symlink to a missing file");
        auto dir = fs_write_file(s.at("sub", "fs.write"), "x", r);
        REQUIRE_FALSE(dir);
        CHECK(dir.error().message == "fs.write: sub: Is a directory");
        auto under_file = fs_write_file(s.at("sub/in.txt/x", "fs.write"), "x", r);
        REQUIRE_FALSE(under_file);
        CHECK(under_file.error().message == "fs.write: sub/in.txt/x: Not a directory");
        fs::remove_all(s.root + "/a");
    }
}

TEST_CASE("fs ops: the scratch directory is made by the first write and lists empty before") {
    Sandbox s;
    FsTarget t;
    t.fn = "fs.list";
    t.shown = ".";
    t.root = s.scratch;
    t.rel = ".";
    t.root_is_scratch = true;
    t.is_scratch = true;
    auto empty = fs_list_dir(t);
    REQUIRE(empty);
    CHECK(empty->empty());
    CHECK_FALSE(fs::exists(s.scratch));
    t.fn = "fs.write";
    t.rel = "z/y.txt";
    t.is_scratch = false;
    REQUIRE(fs_write_file(t, "y"));
    t.rel = "b.txt";
    REQUIRE(fs_write_file(t, "b"));
    t.rel = "a.txt";
    REQUIRE(fs_write_file(t, "a"));
    t.rel = ".";
    t.is_scratch = true;
    auto listed = fs_list_dir(t);
    REQUIRE(listed);
    CHECK(*listed == std::vector<std::string>{"a.txt", "b.txt", "z"});
    // A missing subdirectory of it is missing, though.
    t.fn = "fs.list";
    t.rel = "nope";
    t.is_scratch = false;
    t.shown = "nope";
    auto missing = fs_list_dir(t);
    REQUIRE_FALSE(missing);
    CHECK(missing.error().message == "fs.list: nope: No such file or directory");
}

TEST_CASE("fs ops: read refuses a file over the cap, and what is not a regular file") {
    Sandbox s;
    Sandbox::spit(s.root + "/big", std::string(1000, 'x'));
    auto big = fs_read_file(s.at("big"), 999, "the workflow's Lua memory");
    REQUIRE_FALSE(big);
    CHECK(big.error().message == "fs.read: big is 1000 bytes, more than the workflow's Lua memory");
    auto fits = fs_read_file(s.at("big"), 1000, "x");
    REQUIRE(fits);
    CHECK(fits->size() == 1000);
    REQUIRE(::mkfifo((s.root + "/fifo").c_str(), 0600) == 0);
    auto fifo = fs_read_file(s.at("fifo"), 1000, "x"); // must not hang on the open
    REQUIRE_FALSE(fifo);
    CHECK(fifo.error().message == "fs.read: fifo is not a regular file");
}
