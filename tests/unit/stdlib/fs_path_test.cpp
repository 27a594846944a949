// The path policy of fs.*: what resolves where, and what is refused with which message.
#include "stdlib/fs_path.hpp"

#include <doctest/doctest.h>

using namespace luaflow;
using namespace luaflow::stdlib;

namespace {

const FsRoots kRoots{"/state/scratch/e1/a", {"/srv/data", "/mnt/in/"}};

struct Row {
    const char* path;
    const char* root; // nullptr: refused
    const char* rel;
};

} // namespace

TEST_CASE("fs path policy: where allowed paths resolve") {
    const Row rows[] = {
        {"out.txt", "/state/scratch/e1/a", "out.txt"},
        {"./sub//x.bin", "/state/scratch/e1/a", "sub/x.bin"},
        {".", "/state/scratch/e1/a", "."},
        {"sub/", "/state/scratch/e1/a", "sub"},
        {"/srv/data", "/srv/data", "."},
        {"/srv/data/", "/srv/data", "."},
        {"/srv/data/a/b.csv", "/srv/data", "a/b.csv"},
        {"//srv//data/./a", "/srv/data", "a"},
        {"/mnt/in/x", "/mnt/in", "x"}, // a root given with a trailing slash
        {"/state/scratch/e1/a/f", "/state/scratch/e1/a", "f"},
        {"/srv/data/..x", "/srv/data", "..x"}, // a name starting with dots is not '..'
        {"/srv/data/x..", "/srv/data", "x.."},
    };
    for (const Row& row : rows) {
        CAPTURE(row.path);
        auto t = resolve_fs_path("fs.read", row.path, kRoots);
        REQUIRE(t);
        CHECK(t->root == row.root);
        CHECK(t->rel == row.rel);
        CHECK(t->fn == "fs.read");
        CHECK(t->shown == row.path);
        CHECK(t->root_is_scratch == (std::string(row.root) == "/state/scratch/e1/a"));
    }
}

TEST_CASE("fs path policy: refusals name the function and the path and say what is allowed") {
    const std::string outside = " is outside the sandbox (allowed: /srv/data, /mnt/in and the job's scratch "
                                "directory)";
    const std::pair<const char*, std::string> rows[] = {
        {"/etc/passwd", "fs.write: /etc/passwd" + outside},
        {"/srv/data2/x", "fs.write: /srv/data2/x" + outside}, // a prefix of the name, not a parent
        {"/srv/dat", "fs.write: /srv/dat" + outside},
        {"/srv", "fs.write: /srv" + outside},
        {"/", "fs.write: /" + outside},
        {"/state/scratch/e1/ab/x", "fs.write: /state/scratch/e1/ab/x" + outside}, // a sibling action's name
        {"/state/scratch/e1", "fs.write: /state/scratch/e1" + outside},
        {"../x", "fs.write: '../x' may not contain '..'"},
        {"a/../../x", "fs.write: 'a/../../x' may not contain '..'"},
        {"a/..", "fs.write: 'a/..' may not contain '..'"},
        {"/srv/data/../etc/passwd", "fs.write: '/srv/data/../etc/passwd' may not contain '..'"},
        {"/srv/data/a/../b",
         "fs.write: '/srv/data/a/../b' may not contain '..'"}, // even when it stays inside
        {"..", "fs.write: '..' may not contain '..'"},
        {"", "fs.write: the path is empty"},
    };
    for (const auto& [path, message] : rows) {
        CAPTURE(path);
        auto t = resolve_fs_path("fs.write", path, kRoots);
        REQUIRE_FALSE(t);
        CHECK(t.error().message == message);
    }
    using namespace std::string_literals;
    auto nul = resolve_fs_path("fs.list", "a\0b"s, kRoots);
    REQUIRE_FALSE(nul);
    CHECK(nul.error().message == "fs.list: the path contains a NUL byte");
}

TEST_CASE("fs path policy: the allowed list reads right with one root or none") {
    auto only_scratch = resolve_fs_path("fs.read", "/etc/passwd", FsRoots{"/s", {}});
    CHECK(only_scratch.error().message ==
          "fs.read: /etc/passwd is outside the sandbox (allowed: only the job's scratch directory)");
    auto one = resolve_fs_path("fs.read", "/etc/passwd", FsRoots{"/s", {"/srv/data"}});
    CHECK(one.error().message ==
          "fs.read: /etc/passwd is outside the sandbox (allowed: /srv/data and the job's scratch directory)");
    auto relative = resolve_fs_path("fs.read", "x", FsRoots{"", {"/srv/data"}});
    CHECK(relative.error().message == "fs.read: 'x' is relative, and there is no scratch directory here");
    // A relative root (the config loader refuses those) allows nothing rather than something under '/'.
    auto ignored = resolve_fs_path("fs.read", "/data/x", FsRoots{"/s", {"data"}});
    CHECK_FALSE(ignored);
}

TEST_CASE("fs path policy: nested roots resolve in the outermost, and the scratch directory is known") {
    FsRoots roots{"/state/scratch/e1/a", {"/state"}};
    auto t = resolve_fs_path("fs.read", "f", roots);
    REQUIRE(t);
    CHECK(t->root == "/state");
    CHECK(t->rel == "scratch/e1/a/f");
    CHECK_FALSE(t->root_is_scratch);
    CHECK_FALSE(t->is_scratch);
    auto s = resolve_fs_path("fs.list", ".", kRoots);
    REQUIRE(s);
    CHECK(s->is_scratch);
    auto same = resolve_fs_path("fs.list", "/s/x", FsRoots{"/s/", {"/s"}});
    REQUIRE(same);
    CHECK(same->root == "/s");
    CHECK(same->root_is_scratch);
    // A root of '/' allows everything, and its paths keep a single slash.
    auto all = resolve_fs_path("fs.read", "/etc/passwd", FsRoots{"", {"/"}});
    REQUIRE(all);
    CHECK(all->root == "/");
    CHECK(all->rel == "etc/passwd");
}

TEST_CASE("fs path policy: roots are normalised") {
    CHECK(normalise_root("/srv/data/") == "/srv/data");
    CHECK(normalise_root("//srv/./data") == "/srv/data");
    CHECK(normalise_root("/state/../state2/scratch") == "/state2/scratch");
    CHECK(normalise_root("/") == "/");
    CHECK(normalise_root("/..") == "/");
}
