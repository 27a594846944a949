// The control socket end to end: the input is what one client writes (request lines). A real
// SocketServer over the real handlers and a real engine (a store, workflows, the executor) answers on
// the loop, as in the daemon. What must hold (common/protocol.hpp): every line read back is one JSON
// object with an "id" and one of "result", "error", "event"; and unless the daemon closed the connection
// (a client too far ahead, a line too long), every non-blank request line gets exactly one final answer.
#include "daemon/control/socket_server.hpp"
#include "tests/fuzz/fuzz_daemon.hpp"

#include <cerrno>
#include <cstdint>
#include <fcntl.h>
#include <memory>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace {

using namespace luaflow;
using nlohmann::json;

// How long a client waits for its answers before the missing ones are a failure.
constexpr std::uint64_t kAnswerBoundNs = 8'000'000'000;

struct Daemon : fuzz::Daemon {
    std::unique_ptr<control::SocketServer> server;
    std::string socket_path;

    Daemon() {
        server = std::make_unique<control::SocketServer>(&loop, control::make_handler(*ctx));
        socket_path = dir.file("luaflowd.sock");
        if (!server->listen(socket_path, std::nullopt, "")) fuzz::violated("cannot listen on " + socket_path);
    }

    int connect_client() const {
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket_path.c_str());
        // The listen backlog takes the connection before the loop accepts it.
        if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
            fuzz::violated("cannot connect to the control socket");
        ::fcntl(fd, F_SETFL, O_NONBLOCK);
        return fd;
    }
};

// Request lines the server dispatches: complete lines that are not blank.
std::size_t count_requests(const std::string& input) {
    std::size_t n = 0, start = 0;
    for (std::size_t nl; (nl = input.find('\n', start)) != std::string::npos; start = nl + 1)
        if (input.substr(start, nl - start).find_first_not_of(" \t\r") != std::string::npos) ++n;
    return n;
}

// What the client has read back, each complete line checked as it arrives.
struct Answers {
    std::string text;
    std::size_t checked = 0; // bytes of `text` whose lines are checked
    std::size_t finals = 0;  // result and error lines among them

    void add(const char* data, std::size_t n) {
        text.append(data, n);
        for (std::size_t nl; (nl = text.find('\n', checked)) != std::string::npos; checked = nl + 1) {
            std::string line = text.substr(checked, nl - checked);
            json j = json::parse(line, nullptr, false);
            if (!j.is_object() || !j.contains("id"))
                fuzz::violated("an answer line is not an object with an id: " + line);
            int kinds = int(j.contains("result")) + int(j.contains("error")) + int(j.contains("event"));
            if (kinds != 1) fuzz::violated("an answer line is not one of result/error/event: " + line);
            if (!j.contains("event")) ++finals;
        }
    }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static Daemon* daemon =
        new Daemon(); // once per process; never destroyed (libFuzzer exits without unwinding)
    std::string input(reinterpret_cast<const char*>(data), size);
    std::size_t expected = count_requests(input);
    int fd = daemon->connect_client();
    std::size_t written = 0;
    Answers answers;
    bool closed_by_daemon = false;
    std::uint64_t bound = uv_hrtime() + kAnswerBoundNs;
    for (;;) {
        if (written < input.size()) {
            ssize_t n = ::write(fd, input.data() + written, input.size() - written);
            if (n > 0)
                written += static_cast<std::size_t>(n);
            else if (n < 0 && errno != EAGAIN)
                closed_by_daemon = true; // EPIPE, ECONNRESET
        }
        uv_run(&daemon->loop, UV_RUN_NOWAIT);
        char buf[65536];
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n > 0)
            answers.add(buf, static_cast<std::size_t>(n));
        else if (n == 0 || errno != EAGAIN)
            closed_by_daemon = true;
        if (closed_by_daemon || (written == input.size() && answers.finals >= expected)) break;
        if (uv_hrtime() > bound)
            fuzz::violated(std::to_string(expected - answers.finals) + " of " + std::to_string(expected) +
                           " requests unanswered after 8 s");
        if (n <= 0) {
            pollfd p{fd, POLLIN, 0};
            ::poll(&p, 1, 1); // the loop's work is done between polls; this only spares the CPU
        }
    }
    if (!closed_by_daemon && answers.finals != expected)
        fuzz::violated(std::to_string(answers.finals) + " answers to " + std::to_string(expected) +
                       " requests");
    ::close(fd);
    // Lets the daemon see the client go and drop the connection before the next input.
    for (int i = 0; i < 4; ++i)
        uv_run(&daemon->loop, UV_RUN_NOWAIT);
    return 0;
}
