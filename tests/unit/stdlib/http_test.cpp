// http.* in a task on a real loop: the coroutine stays suspended until the answer, a task cancelled while
// it waits is not resumed and its connection is dropped, and calls outside an action are refused.
#include "loop/curl_multi.hpp"
#include "scripting/task.hpp"
#include "stdlib/stdlib.hpp"
#include "tests/unit/support/local_socket.hpp"
#include "tests/unit/support/lua_sandbox.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>

using namespace luaflow;
using namespace luaflow::scripting;

namespace {

class HttpServices final : public stdlib::Services {
  public:
    explicit HttpServices(uv_loop_t* loop) : loop_(loop), curl_(loop) {}
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
