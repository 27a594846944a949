#pragma once
// A non-blocking TCP socket bound to 127.0.0.1 on a free port: a peer a test answers by hand. With
// listen() and no accept(), connections complete (the kernel's backlog) but nothing ever answers;
// without listen(), connecting is refused.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

namespace luaflow::testing {

struct LocalSocket {
    int fd = -1;
    int port = 0;
    explicit LocalSocket(bool listening) {
        fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        socklen_t len = sizeof a;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        port = ntohs(a.sin_port);
        if (listening) REQUIRE(::listen(fd, 16) == 0);
    }
    ~LocalSocket() { ::close(fd); }
    std::string url(const std::string& path = "/") const {
        return "http://127.0.0.1:" + std::to_string(port) + path;
    }
};

} // namespace luaflow::testing
