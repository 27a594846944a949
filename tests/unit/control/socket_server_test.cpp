// The control socket (control/socket_server, SPEC 6): JSON lines in, one answer line per request, in
// request order per connection; bad lines answered with an error while the rest are served; the socket
// file's mode, its stale copy and its removal. A real loop, a real Unix socket, a plain client.
#include "daemon/control/socket_server.hpp"

#include "common/protocol.hpp"
#include "tests/unit/support/temp_dir.hpp"
#include "tests/unit/support/test_loop.hpp"

#include <doctest/doctest.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <vector>

using namespace luaflow;
using control::json;
using control::Reply;

namespace {

// A client with a non-blocking socket, read and written between turns of the server's loop.
class Client {
  public:
    Client(testing::Loop& l, const std::string& path) : l_(l) {
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
        REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    }
    ~Client() { close(); }
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    void close() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

    // Writes all of `data`, turning the loop while the socket's buffer is full so the server reads.
    void send(std::string_view data) {
        while (!data.empty()) {
            ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
            if (n > 0) {
                data.remove_prefix(static_cast<std::size_t>(n));
                continue;
            }
            REQUIRE((n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)));
            read_available(); // the server may be blocked writing answers to us
            uv_run(&l_.uv, UV_RUN_NOWAIT);
        }
    }

    // Turns the loop until `n` whole lines have come (or the end of the stream); returns them parsed.
    std::vector<json> lines(std::size_t n, std::uint64_t ms = 10'000) {
        l_.run_until(
            [&] {
                read_available();
                return complete_lines() >= n || eof_;
            },
            ms);
        std::vector<json> out;
        std::size_t start = 0;
        for (std::size_t nl; (nl = in_.find('\n', start)) != std::string::npos; start = nl + 1)
            out.push_back(json::parse(in_.substr(start, nl - start)));
        return out;
    }

    // Turns the loop until the server ends the stream.
    bool wait_eof(std::uint64_t ms = 10'000) {
        return l_.run_until(
            [&] {
                read_available();
                return eof_;
            },
            ms);
    }

    const std::string& raw() const { return in_; }

  private:
    std::size_t complete_lines() const {
        std::size_t n = 0;
        for (char c : in_)
            n += c == '\n';
        return n;
    }
    void read_available() {
        char buf[65536];
        for (;;) {
            ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
            if (n > 0) {
                in_.append(buf, static_cast<std::size_t>(n));
                continue;
            }
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) eof_ = true;
            return;
        }
    }

    testing::Loop& l_;
    int fd_ = -1;
    std::string in_;
    bool eof_ = false;
};

// A server whose handler knows a few test methods; requests it holds are answered by the test.
struct Fixture {
    testing::Loop l;
    testing::TempDir dir;
    std::string path = dir.file("luaflowd.sock");
    std::vector<std::string> calls;           // methods in the order the handler got them
    std::vector<std::shared_ptr<Reply>> held; // "hold": answered later by the test
    bool gone = false;                        // a held request's client went away
    std::unique_ptr<control::SocketServer> server;

    Fixture() {
        server = std::make_unique<control::SocketServer>(
            &l.uv, [this](const std::string& method, const json& params, std::shared_ptr<Reply> reply) {
                calls.push_back(method);
                if (method == "echo") {
                    reply->result({{"method", method}, {"params", params}});
                } else if (method == "hold") {
                    reply->on_gone([this] { gone = true; });
                    held.push_back(reply);
                } else if (method == "throw") {
                    throw std::runtime_error("kaboom");
                } else if (method == "events") {
                    reply->event(1);
                    reply->events({2, 3});
                    reply->result("done");
                } else if (method == "array") {
                    reply->open_result_array();
                    reply->add_result_elements({1, 2});
                    reply->add_result_elements({});
                    reply->add_result_elements({json{{"three", 3}}});
                    reply->close_result_array();
                } else if (method == "pages") {
                    // The second page only once the first is written (backpressure).
                    reply->event("page 1");
                    reply->when_drained([reply] {
                        reply->event("page 2");
                        reply->result("end");
                    });
                } else if (method == "broken_stream") {
                    reply->open_result_array();
                    reply->add_result_elements({1});
                    reply->error(make_error(ErrorCode::internal, "lost the rest"));
                } else {
                    reply->error(make_error(ErrorCode::not_found, "no method " + method));
                }
            });
        auto r = server->listen(path, std::nullopt, "");
        REQUIRE_MESSAGE(r, r.error().message);
    }
    ~Fixture() {
        held.clear();
        server.reset();
    }
};

json ok(const json& id, const std::string& method, const json& params = json::object()) {
    return {{"id", id}, {"result", {{"method", method}, {"params", params}}}};
}

json invalid(const std::string& message) {
    return {{"id", nullptr}, {"error", {{"code", "invalid"}, {"message", message}}}};
}

} // namespace

TEST_CASE("a request is answered on one line that echoes its id with the handler's result") {
    Fixture f;
    Client c(f.l, f.path);
    c.send(R"({"id": 7, "method": "echo", "params": {"a": [1, "x"]}})"
           "\n"
           R"({"id": "req-b", "method": "echo"})"
           "\n");
    auto lines = c.lines(2);
    REQUIRE(lines.size() == 2);
    CHECK(lines[0] == ok(7, "echo", {{"a", {1, "x"}}}));
    CHECK(lines[1] == ok("req-b", "echo")); // params default to {}
    CHECK(c.raw() == lines[0].dump() + "\n" + lines[1].dump() + "\n");
    CHECK(f.calls == std::vector<std::string>{"echo", "echo"});
}

TEST_CASE("pipelined requests are answered in request order, even when the first is answered last") {
    Fixture f;
    Client c(f.l, f.path);
    c.send(R"({"id": 1, "method": "hold"})"
           "\n"
           R"({"id": 2, "method": "echo"})"
           "\n"
           R"({"id": 3, "method": "echo"})"
           "\n");
    REQUIRE(f.l.run_until([&] { return f.calls.size() == 3; }, 5'000));
    // 2 and 3 are answered already; they wait behind 1.
    CHECK(c.lines(1, 100).empty());
    REQUIRE(f.held.size() == 1);
    f.held[0]->result("late");
    auto lines = c.lines(3);
    REQUIRE(lines.size() == 3);
    CHECK(lines[0] == json{{"id", 1}, {"result", "late"}});
    CHECK(lines[1] == ok(2, "echo"));
    CHECK(lines[2] == ok(3, "echo"));
}

TEST_CASE("a request split across two reads is answered once") {
    Fixture f;
    Client c(f.l, f.path);
    std::string request = R"({"id": 1, "method": "echo", "params": {"k": "v"}})";
    c.send(request.substr(0, 20));
    f.l.run_until([&] { return !f.calls.empty(); }, 100);
    CHECK(f.calls.empty()); // half a line is not a request
    c.send(request.substr(20) + "\n" + R"({"id": 2, "method": "echo"})" + "\n");
    auto lines = c.lines(2);
    REQUIRE(lines.size() == 2);
    CHECK(lines[0] == ok(1, "echo", {{"k", "v"}}));
    CHECK(lines[1] == ok(2, "echo"));
    CHECK(f.calls.size() == 2);
}

TEST_CASE("a line that is not JSON gets an invalid error with a null id, and the next request is served") {
    Fixture f;
    Client c(f.l, f.path);
    c.send("this is not json\n"
           R"({"id": 2, "method": "echo"})"
           "\n");
    auto lines = c.lines(2);
    REQUIRE(lines.size() == 2);
    CHECK(lines[0] == invalid("request is not a JSON object"));
    CHECK(lines[1] == ok(2, "echo"));
}

TEST_CASE("requests without a method string, with params not an object, or nested too deep are refused, "
          "each saying why") {
    Fixture f;
    Client c(f.l, f.path);
    std::string deep =
        std::string(protocol::kMaxJsonDepth + 10, '[') + std::string(protocol::kMaxJsonDepth + 10, ']');
    std::string batch = std::string(R"({"id": 1})") + "\n" + R"({"id": 2, "method": 5})" + "\n" +
                        R"({"id": 3, "method": "echo", "params": [1]})" + "\n" + "[1, 2]\n" +
                        R"({"id": 5, "method": "echo", "params": )" + deep + "}\n" +
                        R"({"id": {"not": "plain"}, "method": "echo"})" + "\n";
    c.send(batch);
    auto lines = c.lines(6);
    REQUIRE(lines.size() == 6);
    CHECK(lines[0] ==
          json{{"id", 1}, {"error", {{"code", "invalid"}, {"message", "request has no \"method\" string"}}}});
    CHECK(lines[1] ==
          json{{"id", 2}, {"error", {{"code", "invalid"}, {"message", "request has no \"method\" string"}}}});
    CHECK(lines[2] ==
          json{{"id", 3}, {"error", {{"code", "invalid"}, {"message", "\"params\" must be an object"}}}});
    CHECK(lines[3] == invalid("request is not a JSON object"));
    CHECK(lines[4] ==
          invalid("request is nested deeper than " + std::to_string(protocol::kMaxJsonDepth) + " levels"));
    // An id that is neither a string nor a number is not echoed back.
    CHECK(lines[5] == ok(nullptr, "echo"));
    CHECK(f.calls == std::vector<std::string>{"echo"}); // the handler saw only the valid request
}

TEST_CASE("blank lines get no answer") {
    Fixture f;
    Client c(f.l, f.path);
    c.send("\n   \r\n\t\n"
           R"({"id": 1, "method": "echo"})"
           "\n\n"
           R"({"id": 2, "method": "echo"})"
           "\n");
    auto lines = c.lines(2);
    REQUIRE(lines.size() == 2);
    CHECK(lines[0] == ok(1, "echo"));
    CHECK(lines[1] == ok(2, "echo"));
}

TEST_CASE("a handler that throws answers its request with an internal error, and the connection goes on") {
    Fixture f;
    Client c(f.l, f.path);
    c.send(R"({"id": 1, "method": "throw"})"
           "\n"
           R"({"id": 2, "method": "echo"})"
           "\n");
    auto lines = c.lines(2);
    REQUIRE(lines.size() == 2);
    CHECK(lines[0] ==
          json{{"id", 1}, {"error", {{"code", "internal"}, {"message", "throw failed: kaboom"}}}});
    CHECK(lines[1] == ok(2, "echo"));
}

TEST_CASE("event lines come before the result, each on its own line with the request's id") {
    Fixture f;
    Client c(f.l, f.path);
    c.send(R"({"id": "s", "method": "events"})"
           "\n");
    auto lines = c.lines(4);
    REQUIRE(lines.size() == 4);
    CHECK(lines[0] == json{{"id", "s"}, {"event", 1}});
    CHECK(lines[1] == json{{"id", "s"}, {"event", 2}});
    CHECK(lines[2] == json{{"id", "s"}, {"event", 3}});
    CHECK(lines[3] == json{{"id", "s"}, {"result", "done"}});
}

TEST_CASE("a result sent in parts arrives as one ordinary result line") {
    Fixture f;
    Client c(f.l, f.path);
    c.send(R"({"id": 4, "method": "array"})"
           "\n"
           R"({"id": 5, "method": "echo"})"
           "\n");
    auto lines = c.lines(2);
    REQUIRE(lines.size() == 2);
    CHECK(lines[0] == json{{"id", 4}, {"result", {1, 2, {{"three", 3}}}}});
    CHECK(lines[1] == ok(5, "echo"));
}

TEST_CASE("the next page is produced once the last is written, and the answer ends after it") {
    Fixture f;
    Client c(f.l, f.path);
    c.send(R"({"id": 1, "method": "pages"})"
           "\n");
    auto lines = c.lines(3);
    REQUIRE(lines.size() == 3);
    CHECK(lines[0] == json{{"id", 1}, {"event", "page 1"}});
    CHECK(lines[1] == json{{"id", 1}, {"event", "page 2"}});
    CHECK(lines[2] == json{{"id", 1}, {"result", "end"}});
}

TEST_CASE(
    "an error after a streamed result has begun ends the connection, since the line cannot be finished") {
    Fixture f;
    Client c(f.l, f.path);
    c.send(R"({"id": 1, "method": "broken_stream"})"
           "\n");
    CHECK(c.wait_eof());
    CHECK(c.raw() == R"({"id":1,"result":[1)");
}

TEST_CASE("a client that goes before its answer is told to the handler, and other clients are still served") {
    Fixture f;
    {
        Client c(f.l, f.path);
        c.send(R"({"id": 1, "method": "hold"})"
               "\n");
        REQUIRE(f.l.run_until([&] { return f.held.size() == 1; }, 5'000));
        CHECK(f.held[0]->alive());
        CHECK_FALSE(f.gone);
    }
    CHECK(f.l.run_until([&] { return f.gone; }, 5'000));
    CHECK_FALSE(f.held[0]->alive());
    f.held[0]->result("too late"); // goes nowhere
    Client other(f.l, f.path);
    other.send(R"({"id": 2, "method": "echo"})"
               "\n");
    auto lines = other.lines(1);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0] == ok(2, "echo"));
}

TEST_CASE("a request line over the limit is answered with an error after the earlier answers, then the "
          "connection ends") {
    Fixture f;
    Client c(f.l, f.path);
    c.send(R"({"id": 1, "method": "echo"})"
           "\n");
    // No newline in sight past the limit: the line can only be refused.
    c.send(std::string(protocol::kMaxLine + 1, 'x'));
    auto lines = c.lines(2, 30'000);
    REQUIRE(lines.size() == 2);
    CHECK(lines[0] == ok(1, "echo"));
    CHECK(lines[1] == invalid("request line is longer than 16 MiB; the connection is closed"));
    CHECK(c.wait_eof());
    CHECK(f.calls == std::vector<std::string>{"echo"});
    Client other(f.l, f.path);
    other.send(R"({"id": 2, "method": "echo"})"
               "\n");
    auto served = other.lines(1);
    REQUIRE(served.size() == 1);
    CHECK(served[0] == ok(2, "echo"));
}

TEST_CASE("the socket file gets the mode asked for, in a directory created for it") {
    testing::Loop l;
    testing::TempDir dir;
    control::SocketServer server(
        &l.uv, [](const std::string&, const json&, std::shared_ptr<Reply> reply) { reply->result(nullptr); });
    std::string path = dir.file("run/luaflow/luaflowd.sock");
    auto r = server.listen(path, 0600u, "");
    REQUIRE_MESSAGE(r, r.error().message);
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK((st.st_mode & 0777) == 0600);
    server.close();

    control::SocketServer group_readable(
        &l.uv, [](const std::string&, const json&, std::shared_ptr<Reply> reply) { reply->result(nullptr); });
    REQUIRE(group_readable.listen(path, 0660u, ""));
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0660);
}

TEST_CASE("a stale socket file is replaced, but a path where a server answers is refused") {
    Fixture f;
    auto noop = [](const std::string&, const json&, std::shared_ptr<Reply> reply) { reply->result(nullptr); };
    control::SocketServer second(&f.l.uv, noop);
    auto refused = second.listen(f.path, std::nullopt, "");
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == ErrorCode::conflict);
    CHECK(refused.error().message == "another luaflowd is listening on " + f.path);
    // The first server still has its socket.
    Client c(f.l, f.path);
    c.send(R"({"id": 1, "method": "echo"})"
           "\n");
    CHECK(c.lines(1) == std::vector<json>{ok(1, "echo")});

    // A socket file left by a daemon that died: bound, never listened on, never removed.
    std::string stale = f.dir.file("stale.sock");
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, stale.c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    ::close(fd);
    REQUIRE(std::filesystem::exists(stale));
    control::SocketServer third(&f.l.uv, noop);
    auto taken = third.listen(stale, std::nullopt, "");
    REQUIRE_MESSAGE(taken, taken.error().message);
    Client d(f.l, stale);
    d.send(R"({"id": 2, "method": "any"})"
           "\n");
    CHECK(d.lines(1) == std::vector<json>{json{{"id", 2}, {"result", nullptr}}});
}

TEST_CASE("closing the server removes the socket file and ends its open connections") {
    Fixture f;
    Client c(f.l, f.path);
    c.send(R"({"id": 1, "method": "hold"})"
           "\n");
    REQUIRE(f.l.run_until([&] { return f.held.size() == 1; }, 5'000));
    f.server->close();
    CHECK_FALSE(std::filesystem::exists(f.path));
    CHECK(c.wait_eof());
    CHECK(c.raw().empty());
    CHECK(f.gone); // the held request's handler heard of it
    CHECK_FALSE(f.held[0]->alive());
}

TEST_CASE("a socket path too long for a Unix socket is refused, naming it") {
    testing::Loop l;
    testing::TempDir dir;
    control::SocketServer server(
        &l.uv, [](const std::string&, const json&, std::shared_ptr<Reply> reply) { reply->result(nullptr); });
    std::string path = dir.file(std::string(sizeof(sockaddr_un{}.sun_path), 's'));
    auto r = server.listen(path, std::nullopt, "");
    REQUIRE_FALSE(r);
    CHECK(r.error().code == ErrorCode::invalid);
    CHECK(r.error().message == "socket path " + path + " is too long for a Unix socket");
}
