// exec() on a real loop: the coroutine resumes with the result once the program has ended, and a task
// cancelled while it waits (on the thread pool's directory step, or on the running program) is never
// resumed, its program's group is terminated, and nothing leaks (run under ASan too).
#include "loop/uv_handle.hpp"
#include "scripting/task.hpp"
#include "stdlib/stdlib.hpp"
#include "tests/unit/support/lua_sandbox.hpp"
#include "tests/unit/support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>

using namespace luaflow;
using namespace luaflow::scripting;

namespace {

class ExecServices final : public stdlib::Services {
  public:
    explicit ExecServices(uv_loop_t* loop) : loop_(loop) {}
    uv_loop_t* loop() override { return loop_; }
    void log_line(const Task*, const std::string&, stdlib::LogLevel, const std::string&) override {}
    std::map<std::string, std::string> exec_environment() override {
        const char* path = std::getenv("PATH");
        return {{"PATH", path ? path : "/usr/bin:/bin"}};
    }

  private:
    uv_loop_t* loop_;
};

struct Fixture : testing::LuaSandbox {
    testing::TempDir dir;
    std::unique_ptr<ExecServices> services;
    long refs_before = LuaRef::live_count();

    Fixture() {
        std::signal(SIGPIPE, SIG_IGN);
        services = std::make_unique<ExecServices>(&loop);
        open(*services);
    }
    ~Fixture() {
        close();
        CHECK(LuaRef::live_count() == refs_before);
    }
    TaskLabel label() { return {"wf", "e1", "a", 1, dir.file("scratch")}; }
};

bool gone(int pid) {
    if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    auto paren = text.rfind(')');
    return paren == std::string::npos || (paren + 2 < text.size() && text[paren + 2] == 'Z');
}

} // namespace

TEST_CASE("exec resumes the action with the result, in the scratch directory it made") {
    Fixture f;
    LuaRef fn = f.compile("local r = exec({ 'sh', '-c', 'cat; pwd; exit 4' }, { stdin = 'in\\n' })\n"
                          "return r.code, r.stdout, r.stderr");
    std::optional<TaskOutcome> out;
    int code = 0;
    std::string stdout_text;
    {
        Task t(f.state, *f.scheduler, f.label(), [&](Task& task, const TaskOutcome& o) {
            out = o;
            lua_State* co = task.results_thread();
            code = static_cast<int>(lua_tointeger(co, 1));
            stdout_text = lua_tostring(co, 2);
        });
        REQUIRE(t.start(fn, LuaRef(), 0));
        CHECK_FALSE(out); // waiting for the program
        REQUIRE(f.run_until([&] { return out.has_value(); }));
    }
    REQUIRE(out->kind == TaskOutcome::Kind::returned);
    CHECK(code == 4);
    std::string scratch = std::filesystem::canonical(f.dir.file("scratch")).string();
    CHECK(stdout_text == "in\n" + scratch + "\n");
}

TEST_CASE("exec: a task cancelled during the directory step is never resumed") {
    Fixture f;
    LuaRef fn = f.compile("exec({ 'sh', '-c', 'echo ran > ran' }) return 1");
    bool done = false;
    {
        Task t(f.state, *f.scheduler, f.label(), [&](Task&, const TaskOutcome&) { done = true; });
        REQUIRE(t.start(fn, LuaRef(), 0));
        t.cancel(); // the pool's work is under way: its callback must find nothing
    }
    uv_run(&f.loop, UV_RUN_DEFAULT);
    CHECK_FALSE(done);
    CHECK_FALSE(std::filesystem::exists(f.dir.file("scratch/ran"))); // the program never started
}

TEST_CASE("exec: a task cancelled while the program runs terminates its group; the late exit finds nothing") {
    Fixture f;
    LuaRef fn = f.compile("exec({ 'sh', '-c', 'sleep 60 & echo $! > gpid.tmp; mv gpid.tmp gpid; wait' }) "
                          "return 1");
    bool done = false;
    std::string gpid_file = f.dir.file("scratch/gpid");
    auto t = std::make_unique<Task>(f.state, *f.scheduler, f.label(),
                                    [&](Task&, const TaskOutcome&) { done = true; });
    REQUIRE(t->start(fn, LuaRef(), 0));
    REQUIRE(f.run_until([&] { return std::filesystem::exists(gpid_file); }));
    int grandchild = 0;
    std::ifstream(gpid_file) >> grandchild;
    REQUIRE(grandchild > 0);
    t.reset(); // the task goes (as at an action's timeout or cancel), and its wait with it
    std::uint64_t start = uv_hrtime();
    uv_run(&f.loop, UV_RUN_DEFAULT); // returns once the child has exited and its handles are closed
    CHECK((uv_hrtime() - start) / 1'000'000 < 5000);
    CHECK_FALSE(done);
    bool killed = false;
    for (int i = 0; i < 500 && !(killed = gone(grandchild)); ++i) {
        struct timespec ts {
            0, 10'000'000
        };
        ::nanosleep(&ts, nullptr); // polling a condition with a deadline
    }
    CHECK(killed);
}
