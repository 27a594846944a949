// http.* in a task on a real loop: the coroutine stays suspended until the answer, a task cancelled while
// it waits is not resumed and its connection is dropped, and calls outside an action are refused. A real
// engine maps libcurl only from its first request on.
#include "loop/curl_api.hpp"
#include "loop/curl_multi.hpp"
#include "scripting/task.hpp"
#include "stdlib/stdlib.hpp"
#include "tests/unit/support/engine.hpp"
#include "tests/unit/support/local_socket.hpp"
#include "tests/unit/support/lua_sandbox.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

extern char** environ;

using namespace luaflow;
using namespace luaflow::scripting;

namespace {

class HttpServices final : public stdlib::Services {
  public:
    explicit HttpServices(uv_loop_t* loop) : loop_(loop), curl_(loop, *loop::curl_api().value()) {}
    uv_loop_t* loop() override { return loop_; }
    void log_line(const Task*, const std::string&, stdlib::LogLevel, const std::string&) override {}
    loop::CurlMulti* curl() override { return &curl_; }

  private:
    uv_loop_t* loop_;
    loop::CurlMulti curl_;
};

struct Fixture : testing::LuaSandbox {
    std::unique_ptr<HttpServices> services;

    Fixture() {
        services = std::make_unique<HttpServices>(&loop);
        open(*services);
    }
    ~Fixture() {
        close();
        services.reset(); // the multi handle, after the tasks whose transfers it held
    }
};

// Accepts one connection and reads its request; -1 until then.
int accept_request(int listener, int& conn) {
    if (conn < 0) conn = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (conn < 0) return -1;
    char buf[4096];
    return static_cast<int>(::recv(conn, buf, sizeof buf, 0));
}

} // namespace

TEST_CASE("http.get suspends the task until the answer, and resumes it with the response") {
    testing::LocalSocket peer(true);
    Fixture f;
    LuaRef fn = f.compile("local r = http.get('" + peer.url("/x") +
                          "') return r.status, r.body, r.headers['x-thing']");
    LuaRef arg;
    std::optional<TaskOutcome> out;
    Task t(f.state, *f.scheduler, {}, [&](Task&, const TaskOutcome& o) { out = o; });
    REQUIRE(t.start(fn, arg, 0));
    CHECK_FALSE(out); // suspended in http.get
    int conn = -1;
    REQUIRE(f.run_until([&] { return accept_request(peer.fd, conn) > 0; }));
    CHECK_FALSE(out); // still waiting: nothing answered yet
    const char reply[] = "HTTP/1.1 201 Created\r\nX-Thing: a\r\nx-thing: b\r\nContent-Length: 4\r\n\r\nbody";
    REQUIRE(::send(conn, reply, sizeof reply - 1, 0) > 0);
    REQUIRE(f.run_until([&] { return out.has_value(); }));
    REQUIRE_MESSAGE(out->kind == TaskOutcome::Kind::returned, out->message);
    lua_State* co = t.results_thread();
    CHECK(lua_tointeger(co, 1) == 201);
    CHECK(std::string(lua_tostring(co, 2)) == "body");
    CHECK(std::string(lua_tostring(co, 3)) == "a, b");
    ::close(conn);
}

TEST_CASE("a task cancelled while http.get waits is not resumed, and its connection is dropped") {
    testing::LocalSocket peer(true);
    Fixture f;
    LuaRef fn = f.compile("http.get('" + peer.url("/x") + "') error('must not run')");
    LuaRef arg;
    std::optional<TaskOutcome> out;
    auto t = std::make_unique<Task>(f.state, *f.scheduler, TaskLabel{},
                                    [&](Task&, const TaskOutcome& o) { out = o; });
    REQUIRE(t->start(fn, arg, 0));
    int conn = -1;
    REQUIRE(f.run_until([&] { return accept_request(peer.fd, conn) > 0; }));
    t->cancel();
    t.reset();
    // The client side closed: recv sees the end of the stream.
    REQUIRE(f.run_until([&] {
        char c;
        return ::recv(conn, &c, 1, MSG_PEEK) == 0;
    }));
    const char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    (void)::send(conn, reply, sizeof reply - 1, MSG_NOSIGNAL); // a late answer finds nobody
    for (int i = 0; i < 5; ++i)
        uv_run(&f.loop, UV_RUN_NOWAIT);
    CHECK_FALSE(out);
    ::close(conn);
}

TEST_CASE("http.request outside an action raises naming itself, and does not block") {
    Fixture f;
    lua_State* L = f.state->L();
    REQUIRE(f.state->load("return pcall(http.request, { url = 'http://127.0.0.1:9/' })", "=load"));
    REQUIRE(lua_pcall(L, 0, 2, 0) == 0);
    CHECK_FALSE(lua_toboolean(L, -2));
    CHECK(std::string(lua_tostring(L, -1)).find("http.request: only allowed while an action runs") !=
          std::string::npos);
    lua_pop(L, 2);
}

namespace {

// Whether libcurl is mapped into this process.
bool libcurl_mapped() {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line))
        if (line.find("libcurl") != std::string::npos) return true;
    return false;
}

// Runs the one test case `name` in a fresh process of this binary (with LUAFLOW_TEST_FRESH set): earlier
// tests here have loaded libcurl, and a fork would inherit it. Its exit status and output.
std::pair<int, std::string> in_fresh_process(const char* name) {
    int out[2];
    REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, out[1], 2);
    std::string filter = std::string("--test-case=") + name;
    const char* argv[] = {"/proc/self/exe", filter.c_str(), nullptr};
    std::vector<char*> env{const_cast<char*>("LUAFLOW_TEST_FRESH=1")};
    for (char** e = environ; *e; ++e)
        env.push_back(*e);
    env.push_back(nullptr);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, argv[0], &fa, nullptr, const_cast<char**>(argv), env.data());
    posix_spawn_file_actions_destroy(&fa);
    ::close(out[1]);
    std::string text;
    char buf[4096];
    for (ssize_t n; rc == 0 && (n = ::read(out[0], buf, sizeof buf)) > 0;)
        text.append(buf, static_cast<std::size_t>(n));
    ::close(out[0]);
    REQUIRE(rc == 0);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    return {status, text};
}

} // namespace

// An idle daemon must not pay for libcurl's ~25 libraries and its TLS initialisation: an engine that runs
// workflows without http.* leaves it unmapped, and the first request loads it.
constexpr const char* kFreshCurlTest =
    "http: libcurl is mapped only from the first request on (fresh process)";
TEST_CASE(kFreshCurlTest) {
    if (!std::getenv("LUAFLOW_TEST_FRESH")) {
        auto [status, output] = in_fresh_process(kFreshCurlTest);
        CHECK_MESSAGE((WIFEXITED(status) && WEXITSTATUS(status) == 0), output);
        CHECK_MESSAGE(output.find("1 passed") != std::string::npos, output); // it did run
        return;
    }
    REQUIRE_FALSE(libcurl_mapped()); // the test binary does not link it either
    testing::LocalSocket closed(false);
    testing::TestEngine e(testing::TestEngine::Files{{"quiet.lua", R"lua(
return workflow { actions = { a = { run = function() return json.encode({ 1 }) end } } }
)lua"},
                                                     {"calls.lua", R"lua(
return workflow { actions = { a = { run = function(ctx)
  local ok, err = pcall(http.get, ctx.input.url)
  return err
end } } }
)lua"}});
    auto quiet = e.run("quiet");
    CHECK(quiet["status"] == "succeeded");
    CHECK_FALSE(libcurl_mapped());
    auto calls = e.run("calls", {{"url", closed.url("/x")}});
    CHECK(calls["status"] == "succeeded");
    CHECK(calls["actions"]["a"]["output"].get<std::string>().find("Couldn't connect") != std::string::npos);
    CHECK(libcurl_mapped());
}
