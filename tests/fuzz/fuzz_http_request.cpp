// The HTTP API end to end: the input is what one TCP client writes (requests, whole or not, pipelined or
// not). The module's real server (libh2o on the loop, compiled into this target rather than dlopen'd)
// hands each request to the real routes over the control handlers and a real engine, as in luaflowd.
// What must hold: whatever the daemon writes back starts as an HTTP/1 response (unless the client spoke
// HTTP/2); once the client has written everything and shut its side, the daemon closes the connection
// within the bound (a pending `?wait=` or SSE follower is let go, never leaked); and after each input a
// fresh client's GET /healthz is answered 200, so no input can wedge the loop or the listener.
#include "daemon/http/module.hpp"
#include "daemon/http/routes.hpp"
#include "tests/fuzz/fuzz_daemon.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstdint>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

extern "C" luaflow::http::Server* luaflow_http_start(uv_loop_t* loop, const luaflow::http::Options& options,
                                                     luaflow::http::Routes* routes, std::string* error);

namespace {

using namespace luaflow;

// How long the daemon may take to end a connection whose client has finished writing.
constexpr std::uint64_t kCloseBoundNs = 8'000'000'000;

struct Daemon : fuzz::Daemon {
    std::unique_ptr<http::ApiRoutes> routes;
    http::Server* server = nullptr;

    Daemon() {
        routes = std::make_unique<http::ApiRoutes>(*ctx, cfg.state);
        http::Options options;
        options.host = "127.0.0.1";
        options.token = "fuzz-token"; // in the seed corpus and the dictionary
        options.max_body = 64 << 10;  // smaller than the default, so that the fuzzer reaches it
        options.request_timeout_ms = 2000;
        std::string error;
        server = luaflow_http_start(&loop, options, routes.get(), &error);
        if (!server) fuzz::violated("the HTTP server does not start: " + error);
        routes->set_server(server);
    }

    int connect_client() const {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<std::uint16_t>(server->port()));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        // The listen backlog takes the connection before the loop accepts it.
        if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
            fuzz::violated("cannot connect to the HTTP port");
        ::fcntl(fd, F_SETFL, O_NONBLOCK);
        return fd;
    }

    // Writes `input` on a fresh connection, shuts the client's side, and runs the loop until the daemon
    // has closed the connection; what it wrote back.
    std::string exchange(const std::string& input) {
        int fd = connect_client();
        std::size_t written = 0;
        bool shut = false;
        std::string answer;
        std::uint64_t bound = uv_hrtime() + kCloseBoundNs;
        for (;;) {
            if (written < input.size()) {
                ssize_t n = ::write(fd, input.data() + written, input.size() - written);
                if (n > 0)
                    written += static_cast<std::size_t>(n);
                else if (n < 0 && errno != EAGAIN)
                    written = input.size(); // the daemon closed first (a request it refused)
            }
            if (written == input.size() && !shut) {
                ::shutdown(fd, SHUT_WR);
                shut = true;
            }
            uv_run(&loop, UV_RUN_NOWAIT);
            char buf[65536];
            ssize_t n = ::read(fd, buf, sizeof buf);
            if (n > 0)
                answer.append(buf, static_cast<std::size_t>(n));
            else if (n == 0 || errno != EAGAIN)
                break;
            if (uv_hrtime() > bound)
                fuzz::violated("the daemon kept a connection open 8 s after its client had finished");
            if (n < 0) {
                pollfd p{fd, POLLIN, 0};
                ::poll(&p, 1, 1); // the loop's work is done between polls; this only spares the CPU
            }
        }
        ::close(fd);
        // Lets the daemon see the client go before the next input.
        for (int i = 0; i < 4; ++i)
            uv_run(&loop, UV_RUN_NOWAIT);
        return answer;
    }
};

bool starts_as_http1_response(const std::string& answer) {
    if (answer.size() < 12) return false;
    if (answer.compare(0, 7, "HTTP/1.") != 0 || answer[8] != ' ') return false;
    int status = std::atoi(answer.substr(9, 3).c_str());
    return status >= 100 && status <= 599;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static Daemon* daemon =
        new Daemon(); // once per process; never destroyed (libFuzzer exits without unwinding)
    std::string input(reinterpret_cast<const char*>(data), size);
    std::string answer = daemon->exchange(input);
    bool http2 = input.starts_with("PRI ") || input.find("Upgrade:") != std::string::npos ||
                 input.find("upgrade:") != std::string::npos;
    if (!answer.empty() && !http2 && !starts_as_http1_response(answer))
        fuzz::violated("the daemon's answer does not start as an HTTP/1 response: " + answer.substr(0, 80));
    std::string health = daemon->exchange("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    if (!health.starts_with("HTTP/1.1 200"))
        fuzz::violated("GET /healthz after the input is not answered 200: " + health.substr(0, 80));
    return 0;
}
