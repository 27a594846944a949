// loop::CurlMulti on a real loop against real peers on 127.0.0.1: python's http.server, a listener that
// never answers, and a port nobody listens on. Completions come from loop callbacks (never inside
// add()), cancelled transfers never call back, connections are reused, and the destructor leaves no
// handle behind.
#include "loop/curl_multi.hpp"
#include "tests/unit/support/local_socket.hpp"
#include "tests/unit/support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

extern char** environ;

using namespace luaflow;

namespace {

// `python3 -m http.server` over a temp directory; its first line of output names the port.
struct PythonHttpServer {
    testing::TempDir dir;
    pid_t pid = -1;
    int port = 0;
    PythonHttpServer() {
        std::ofstream(dir.file("hello.txt")) << "hello from python";
        std::ofstream(dir.file("big.bin")) << std::string(300000, 'x');
        int out[2];
        REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0); // its access log
        std::string d = dir.path();
        const char* argv[] = {"/usr/bin/python3", "-u",        "-m",          "http.server", "0",
                              "--bind",           "127.0.0.1", "--directory", d.c_str(),     nullptr};
        REQUIRE(posix_spawn(&pid, argv[0], &fa, nullptr, const_cast<char**>(argv), environ) == 0);
        posix_spawn_file_actions_destroy(&fa);
        ::close(out[1]);
        // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ...\n", in two writes: the pipe
        // stays open until the newline, or python dies of the broken pipe.
        std::string line;
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
        while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
            pollfd p{out[0], POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0) continue;
            char buf[256];
            ssize_t n = ::read(out[0], buf, sizeof buf);
            if (n <= 0) break;
            line.append(buf, static_cast<size_t>(n));
        }
        ::close(out[0]);
        auto at = line.find(" port ");
        if (at == std::string::npos) {
            ::kill(pid, SIGTERM); // the destructor does not run when the constructor fails
            ::waitpid(pid, nullptr, 0);
        }
        REQUIRE_MESSAGE(at != std::string::npos, "python http.server did not start: " << line);
        port = std::stoi(line.substr(at + 6));
    }
    ~PythonHttpServer() {
        ::kill(pid, SIGTERM);
        ::waitpid(pid, nullptr, 0);
    }
    std::string url(const std::string& path) const {
        return "http://127.0.0.1:" + std::to_string(port) + path;
    }
};

// libcurl, loaded as the daemon loads it (on first use).
const loop::CurlApi& api() {
    auto loaded = loop::curl_api();
    REQUIRE_MESSAGE(loaded, loaded.error().message);
    return **loaded;
}

struct Fixture {
    uv_loop_t loop;
    std::optional<loop::CurlMulti> multi;
    Fixture() {
        uv_loop_init(&loop);
        multi.emplace(&loop, api());
    }
    ~Fixture() {
        multi.reset();
        uv_run(&loop, UV_RUN_DEFAULT);
        // Every poll and the timer closed: the loop has nothing left.
        CHECK(uv_loop_close(&loop) == 0);
    }
    // Runs the loop until cond() or the deadline; a repeating timer keeps UV_RUN_ONCE from blocking.
    bool run_until(const std::function<bool()>& cond, int ms = 10000) {
        loop::Timer tick(&loop);
        tick.start(
            10, [] {}, 10);
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
        while (!cond()) {
            if (std::chrono::steady_clock::now() > deadline) return false;
            uv_run(&loop, UV_RUN_ONCE);
        }
        return true;
    }
    void run_for(int ms) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
        run_until([&] { return std::chrono::steady_clock::now() > deadline; }, ms + 1000);
    }
};

// An easy handle that collects the body.
struct Easy {
    CURL* h = api().easy_init();
    std::string body;
    explicit Easy(const std::string& url) {
        api().easy_set<CURLOPT_URL>(h, url.c_str());
        api().easy_set<CURLOPT_NOSIGNAL>(h, 1L);
        api().easy_set<CURLOPT_WRITEDATA>(h, &body);
        api().easy_set<CURLOPT_WRITEFUNCTION>(
            h, +[](char* d, size_t s, size_t n, void* u) {
                static_cast<std::string*>(u)->append(d, s * n);
                return s * n;
            });
    }
    ~Easy() {
        if (h) api().easy_cleanup(h);
    }
    long status() const {
        long s = 0;
        api().easy_info<CURLINFO_RESPONSE_CODE>(h, &s);
        return s;
    }
    long new_connections() const {
        long n = 0;
        api().easy_info<CURLINFO_NUM_CONNECTS>(h, &n);
        return n;
    }
};

} // namespace

TEST_CASE("CurlMulti: an http GET completes from a loop callback, never inside add()") {
    PythonHttpServer peer;
    Fixture f;
    Easy e(peer.url("/hello.txt"));
    std::optional<CURLcode> result;
    REQUIRE(f.multi->add(e.h, [&](CURLcode c) { result = c; }) == CURLM_OK);
    CHECK_FALSE(result);
    CHECK(f.multi->size() == 1);
    REQUIRE(f.run_until([&] { return result.has_value(); }));
    CHECK(*result == CURLE_OK);
    CHECK(e.status() == 200);
    CHECK(e.body == "hello from python");
    CHECK(f.multi->size() == 0);
}

TEST_CASE("CurlMulti: http transfers run at once, and a second request reuses the connection") {
    PythonHttpServer peer;
    Fixture f;
    std::vector<std::unique_ptr<Easy>> easies;
    int done = 0;
    for (int i = 0; i < 8; ++i) {
        easies.push_back(std::make_unique<Easy>(peer.url(i % 2 ? "/hello.txt" : "/big.bin")));
        REQUIRE(f.multi->add(easies.back()->h, [&](CURLcode c) {
            CHECK(c == CURLE_OK);
            ++done;
        }) == CURLM_OK);
    }
    CHECK(f.multi->size() == 8);
    REQUIRE(f.run_until([&] { return done == 8; }));
    for (int i = 0; i < 8; ++i)
        CHECK(easies[i]->body.size() == (i % 2 ? 17u : 300000u));

    // python's http.server speaks HTTP/1.0 and closes; a listener of ours shows reuse instead.
    // Sequential requests on one multi: the second finds the first's connection in the multi's cache.
    testing::LocalSocket keepalive(true);
    std::optional<CURLcode> first, second;
    Easy a(keepalive.url("/a"));
    api().easy_set<CURLOPT_TIMEOUT_MS>(a.h, 3000L);
    // The test answers by hand, with a canned keep-alive reply, from the loop's turns.
    REQUIRE(f.multi->add(a.h, [&](CURLcode c) { first = c; }) == CURLM_OK);
    int conn = -1;
    REQUIRE(f.run_until([&] {
        if (conn < 0) conn = ::accept4(keepalive.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (conn >= 0) {
            char buf[4096];
            ssize_t n = ::recv(conn, buf, sizeof buf, 0);
            if (n > 0) {
                const char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                REQUIRE(::send(conn, reply, sizeof reply - 1, 0) == static_cast<ssize_t>(sizeof reply - 1));
            }
        }
        return first.has_value();
    }));
    CHECK(*first == CURLE_OK);
    CHECK(a.body == "ok");
    CHECK(a.new_connections() == 1);
    Easy b(keepalive.url("/b"));
    REQUIRE(f.multi->add(b.h, [&](CURLcode c) { second = c; }) == CURLM_OK);
    REQUIRE(f.run_until([&] {
        char buf[4096];
        ssize_t n = ::recv(conn, buf, sizeof buf, 0);
        if (n > 0) {
            const char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok2";
            REQUIRE(::send(conn, reply, sizeof reply - 1, 0) == static_cast<ssize_t>(sizeof reply - 1));
        }
        return second.has_value();
    }));
    CHECK(*second == CURLE_OK);
    CHECK(b.body == "ok2");
    CHECK(b.new_connections() == 0); // the same connection
    int other = ::accept4(keepalive.fd, nullptr, nullptr, SOCK_NONBLOCK);
    CHECK(other < 0); // and no second connection was made

    // The server closes the kept connection: the next request notices and connects again.
    ::close(conn);
    conn = -1;
    std::optional<CURLcode> third;
    Easy c(keepalive.url("/c"));
    REQUIRE(f.multi->add(c.h, [&](CURLcode r) { third = r; }) == CURLM_OK);
    REQUIRE(f.run_until([&] {
        if (conn < 0) conn = ::accept4(keepalive.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        char buf[4096];
        if (conn >= 0 && ::recv(conn, buf, sizeof buf, 0) > 0) {
            const char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok3";
            REQUIRE(::send(conn, reply, sizeof reply - 1, 0) == static_cast<ssize_t>(sizeof reply - 1));
        }
        return third.has_value();
    }));
    CHECK(*third == CURLE_OK);
    CHECK(c.body == "ok3");
    CHECK(c.new_connections() == 1);
    ::close(conn);
}

TEST_CASE("CurlMulti: an http GET by host name goes through curl's resolver") {
    PythonHttpServer peer;
    Fixture f;
    Easy e("http://localhost:" + std::to_string(peer.port) + "/hello.txt");
    std::optional<CURLcode> result;
    REQUIRE(f.multi->add(e.h, [&](CURLcode c) { result = c; }) == CURLM_OK);
    REQUIRE(f.run_until([&] { return result.has_value(); }));
    CHECK(*result == CURLE_OK);
    CHECK(e.body == "hello from python");
}

TEST_CASE("CurlMulti: released easy handles are reused for the next http transfer, reset") {
    testing::LocalSocket closed(false);
    Fixture f;
    CURL* a = f.multi->acquire();
    REQUIRE(a);
    api().easy_set<CURLOPT_URL>(a, closed.url().c_str());
    std::optional<CURLcode> result;
    REQUIRE(f.multi->add(a, [&](CURLcode c) { result = c; }) == CURLM_OK);
    REQUIRE(f.run_until([&] { return result.has_value(); }));
    f.multi->release(a);
    CURL* b = f.multi->acquire();
    CHECK(b == a);
    char* url = nullptr;
    api().easy_info<CURLINFO_EFFECTIVE_URL>(b, &url);
    CHECK((url == nullptr || std::string(url).empty())); // reset: nothing of the last transfer is set
    // Releasing a handle whose transfer runs cancels it: no callback.
    testing::LocalSocket silent(true);
    api().easy_set<CURLOPT_URL>(b, silent.url().c_str());
    bool called = false;
    REQUIRE(f.multi->add(b, [&](CURLcode) { called = true; }) == CURLM_OK);
    f.run_for(100);
    f.multi->release(b);
    CHECK(f.multi->size() == 0);
    f.run_for(100);
    CHECK_FALSE(called);
}

TEST_CASE("CurlMulti: a refused http connection reports CURLE_COULDNT_CONNECT") {
    testing::LocalSocket closed(false);
    Fixture f;
    Easy e(closed.url());
    std::optional<CURLcode> result;
    REQUIRE(f.multi->add(e.h, [&](CURLcode c) { result = c; }) == CURLM_OK);
    REQUIRE(f.run_until([&] { return result.has_value(); }));
    CHECK(*result == CURLE_COULDNT_CONNECT);
}

TEST_CASE("CurlMulti: curl's http timeout fires through the loop's timer") {
    testing::LocalSocket silent(true);
    Fixture f;
    Easy e(silent.url());
    api().easy_set<CURLOPT_TIMEOUT_MS>(e.h, 200L);
    std::optional<CURLcode> result;
    auto started = std::chrono::steady_clock::now();
    REQUIRE(f.multi->add(e.h, [&](CURLcode c) { result = c; }) == CURLM_OK);
    REQUIRE(f.run_until([&] { return result.has_value(); }));
    CHECK(*result == CURLE_OPERATION_TIMEDOUT);
    CHECK(std::chrono::steady_clock::now() - started >= std::chrono::milliseconds(190));
}

TEST_CASE("CurlMulti: a removed http transfer never calls back, and the handle may be freed at once") {
    testing::LocalSocket silent(true);
    Fixture f;
    auto e = std::make_unique<Easy>(silent.url());
    bool called = false;
    REQUIRE(f.multi->add(e->h, [&](CURLcode) { called = true; }) == CURLM_OK);
    f.run_for(100); // connected, waiting for an answer that never comes
    f.multi->remove(e->h);
    e.reset();
    CHECK(f.multi->size() == 0);
    f.run_for(100);
    CHECK_FALSE(called);
    f.multi->remove(nullptr); // unknown handles are ignored
}

TEST_CASE("CurlMulti: an http callback may remove another finished transfer and start a new one") {
    testing::LocalSocket closed(false);
    Fixture f;
    Easy a(closed.url()), b(closed.url()), c(closed.url());
    int a_called = 0, b_called = 0;
    std::optional<CURLcode> c_result;
    // Whichever finishes first cancels the other, even when both finished in the same turn.
    REQUIRE(f.multi->add(a.h, [&](CURLcode) {
        ++a_called;
        f.multi->remove(b.h);
        REQUIRE(f.multi->add(c.h, [&](CURLcode r) { c_result = r; }) == CURLM_OK);
    }) == CURLM_OK);
    REQUIRE(f.multi->add(b.h, [&](CURLcode) {
        ++b_called;
        f.multi->remove(a.h);
        REQUIRE(f.multi->add(c.h, [&](CURLcode r) { c_result = r; }) == CURLM_OK);
    }) == CURLM_OK);
    CHECK(f.multi->add(a.h, [](CURLcode) {}) == CURLM_ADDED_ALREADY);
    REQUIRE(f.run_until([&] { return c_result.has_value(); }));
    CHECK(a_called + b_called == 1);
    CHECK(*c_result == CURLE_COULDNT_CONNECT);
}

TEST_CASE("CurlMulti: destroying the multi with http transfers in flight calls nothing back") {
    testing::LocalSocket silent(true);
    Fixture f;
    Easy a(silent.url()), b(silent.url());
    bool called = false;
    REQUIRE(f.multi->add(a.h, [&](CURLcode) { called = true; }) == CURLM_OK);
    REQUIRE(f.multi->add(b.h, [&](CURLcode) { called = true; }) == CURLM_OK);
    f.run_for(100);
    f.multi.reset(); // the fixture's destructor checks that every handle was closed
    uv_run(&f.loop, UV_RUN_NOWAIT);
    CHECK_FALSE(called);
}
