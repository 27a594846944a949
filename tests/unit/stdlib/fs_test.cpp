// fs.* from Lua on a real loop: the coroutine waits for the thread pool and is resumed from the
// after-work callback; a cancelled task is never resumed; memory limits raise instead of panicking.
#include "scripting/task.hpp"
#include "stdlib/stdlib.hpp"
#include "tests/unit/support/lua_sandbox.hpp"
#include "tests/unit/support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <optional>

using namespace luaflow;
using namespace luaflow::scripting;

namespace {

class FsServices final : public stdlib::Services {
  public:
    FsServices(uv_loop_t* loop, std::vector<std::string> paths) : loop_(loop), paths_(std::move(paths)) {}
    uv_loop_t* loop() override { return loop_; }
    void log_line(const Task*, const std::string&, stdlib::LogLevel, const std::string&) override {}
    std::vector<std::string> sandbox_paths() override { return paths_; }

  private:
    uv_loop_t* loop_;
    std::vector<std::string> paths_;
};

struct Fixture : testing::LuaSandbox {
    testing::TempDir dir;
    std::string data = dir.file("data");
    std::string scratch = dir.file("state/scratch/e1/act");
    std::unique_ptr<FsServices> services;

    Fixture() {
        std::filesystem::create_directories(data);
        services = std::make_unique<FsServices>(&loop, std::vector<std::string>{data});
        open(*services);
    }
    ~Fixture() { close(); }
    TaskLabel label() const { return TaskLabel{"wf", "e1", "act", 1, scratch}; }
    // Runs code as an action until it ends; returns its outcome and leaves its results on the thread.
    TaskOutcome run(const std::string& code, std::string* result = nullptr, bool waits = true) {
        LuaRef fn = compile(code);
        LuaRef arg;
        std::optional<TaskOutcome> out;
        Task t(state, *scheduler, label(), [&](Task& task, const TaskOutcome& o) {
            out = o;
            lua_State* co = task.results_thread();
            if (result && o.kind == TaskOutcome::Kind::returned && lua_gettop(co) >= 1 && lua_isstring(co, 1))
                *result = lua_tostring(co, 1);
        });
        REQUIRE(t.start(fn, arg, 0));
        if (waits) CHECK_FALSE(out); // an fs call waits for the pool: the action cannot end inside start
        while (!out)
            uv_run(&loop, UV_RUN_ONCE);
        return *out;
    }
};

} // namespace

TEST_CASE("fs from Lua: write, read and list, resumed from the thread pool") {
    Fixture f;
    std::string got;
    auto out = f.run(R"(
        fs.write("notes/a.txt", "alpha\0beta")
        fs.write(")" + f.data +
                         R"(/b.txt", 42)
        local a = fs.read("notes/a.txt")
        assert(#a == 10 and a:sub(7) == "beta", a)
        assert(fs.read(")" +
                         f.data + R"(/b.txt") == "42")
        local names = fs.list(".")
        return table.concat(names, ",") .. "|" .. table.concat(fs.list(")" +
                         f.data + R"("), ",")
    )",
                     &got);
    REQUIRE_MESSAGE(out.kind == TaskOutcome::Kind::returned, out.message);
    CHECK(got == "notes|b.txt");
    CHECK(std::filesystem::exists(f.scratch + "/notes/a.txt"));
}

TEST_CASE("fs from Lua: errors raise with the message alone, and pcall catches them") {
    Fixture f;
    std::string got;
    auto out = f.run(R"(
        local ok, e1 = pcall(fs.read, "missing.txt")
        local ok2, e2 = pcall(fs.read, "/etc/passwd")
        local ok3, e3 = pcall(fs.write, "x", {})
        local ok4, e4 = pcall(fs.list)
        assert(not ok and not ok2 and not ok3 and not ok4)
        return table.concat({ e1, e2, e3, e4 }, "\n")
    )",
                     &got);
    REQUIRE_MESSAGE(out.kind == TaskOutcome::Kind::returned, out.message);
    CHECK(got == "fs.read: missing.txt: No such file or directory\n"
                 "fs.read: /etc/passwd is outside the sandbox (allowed: " +
                     f.data +
                     " and the job's scratch directory)\n"
                     "fs.write: the content must be a string, got table\n"
                     "fs.list: the path must be a string, got nil");
    auto failed = f.run("fs.read('/etc/passwd')", nullptr, false); // refused before any work
    CHECK(failed.kind == TaskOutcome::Kind::error);
    CHECK(failed.message.rfind("fs.read: /etc/passwd is outside the sandbox", 0) == 0);
}

TEST_CASE("fs from Lua: only while an action runs") {
    Fixture f;
    // At load time: called on the state's main thread, outside any task.
    LuaRef fn = f.compile("return pcall(fs.list, '.')");
    lua_State* L = f.state->L();
    fn.push(L);
    REQUIRE(lua_pcall(L, 0, 2, 0) == 0);
    CHECK_FALSE(lua_toboolean(L, -2));
    CHECK(std::string(lua_tostring(L, -1)) ==
          "fs.list: only allowed while an action runs (not at load time or inside a coroutine the action "
          "created)");
    lua_pop(L, 2);
    std::string got;
    auto out = f.run(R"(
        local co = coroutine.create(function() return fs.read("x") end)
        local ok, e = coroutine.resume(co)
        return e
    )",
                     &got, false);
    REQUIRE(out.kind == TaskOutcome::Kind::returned);
    CHECK(got.find("only allowed while an action runs") != std::string::npos);
}

TEST_CASE("fs from Lua: a read larger than the Lua memory raises, before and after the pool") {
    Fixture f;
    std::ofstream(f.data + "/9m") << std::string(9u << 20, 'x');
    std::ofstream(f.data + "/7m") << std::string(7u << 20, 'y');
    std::string got;
    auto out = f.run(R"(
        local _, e1 = pcall(fs.read, ")" +
                         f.data + R"(/9m")
        local hold = string.rep("z", 2 * 1024 * 1024) -- the 7 MiB file no longer fits beside this
        local _, e2 = pcall(fs.read, ")" +
                         f.data + R"(/7m")
        return e1 .. "\n" .. e2 .. "\n" .. #hold
    )",
                     &got);
    REQUIRE_MESSAGE(out.kind == TaskOutcome::Kind::returned, out.message);
    CHECK(got == "fs.read: " + f.data +
                     "/9m is 9437184 bytes, more than the workflow's Lua memory (sandbox.memory is 8 MiB)\n" +
                     "fs.read: " + f.data +
                     "/7m: not enough Lua memory for its 7340032 bytes (sandbox.memory is 8 MiB)\n2097152");
}

TEST_CASE("fs from Lua: a task cancelled while its work is queued or running is never resumed") {
    Fixture f;
    long refs = LuaRef::live_count();
    for (int i = 0; i < 20; ++i) {
        LuaRef fn =
            f.compile("fs.write('f" + std::to_string(i) + "', string.rep('x', 100000)) error('resumed')");
        LuaRef arg;
        bool ended = false;
        auto t = std::make_unique<Task>(f.state, *f.scheduler, f.label(),
                                        [&](Task&, const TaskOutcome&) { ended = true; });
        REQUIRE(t->start(fn, arg, 0));
        t->cancel();
        t.reset();
        uv_run(&f.loop, UV_RUN_DEFAULT); // every after-work callback runs, and finds nobody
        CHECK_FALSE(ended);
    }
    CHECK(LuaRef::live_count() == refs);
}
