#include "ctl/client.hpp"

#include "common/protocol.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace luaflow::ctl {

std::string socket_path(const std::string& flag) {
    if (!flag.empty()) return flag;
    if (const char* env = std::getenv("LUAFLOW_SOCKET"); env && *env) return env;
    return protocol::kDefaultSocket;
}

Client::~Client() {
    if (fd_ >= 0) ::close(fd_);
}

Client::Client(Client&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)), path_(std::move(o.path_)), buffer_(std::move(o.buffer_)),
      next_id_(o.next_id_) {}

Result<Client> Client::connect(const std::string& path) {
    sockaddr_un addr{};
    if (path.size() >= sizeof addr.sun_path)
        return make_error(ErrorCode::invalid, "socket path " + path + " is too long");
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return make_error(ErrorCode::unavailable, std::string("socket: ") + std::strerror(errno));
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        int e = errno;
        ::close(fd);
        return make_error(ErrorCode::unavailable,
                          "cannot reach luaflowd at " + path + ": " + std::strerror(e));
    }
    return Client(fd, path);
}

Result<std::string> Client::read_line() {
    for (;;) {
        if (size_t nl = buffer_.find('\n'); nl != std::string::npos) {
            std::string line = buffer_.substr(0, nl);
            buffer_.erase(0, nl + 1);
            return line;
        }
        char buf[65536];
        ssize_t n = ::read(fd_, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0)
            return make_error(ErrorCode::unavailable, "luaflowd at " + path_ + " closed the connection");
        buffer_.append(buf, static_cast<size_t>(n));
    }
}

Result<json> Client::call(const std::string& method, const json& params,
                          const std::function<void(const json&)>& on_event) {
    int id = next_id_++;
    std::string line = json{{"id", id}, {"method", method}, {"params", params}}.dump() + "\n";
    for (size_t off = 0; off < line.size();) {
        ssize_t n = ::write(fd_, line.data() + off, line.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return make_error(ErrorCode::unavailable, "cannot write to luaflowd at " + path_);
        off += static_cast<size_t>(n);
    }
    for (;;) {
        auto text = read_line();
        if (!text) return text.error();
        json msg = json::parse(*text, nullptr, false);
        if (msg.is_discarded() || !msg.is_object())
            return make_error(ErrorCode::internal, "luaflowd sent a line that is not JSON: " + *text);
        if (msg.contains("event")) {
            if (on_event) on_event(msg["event"]);
            continue;
        }
        if (msg.contains("error")) {
            const json& e = msg["error"];
            std::string code = e.value("code", "internal");
            ErrorCode c = code == "invalid"       ? ErrorCode::invalid
                          : code == "not_found"   ? ErrorCode::not_found
                          : code == "conflict"    ? ErrorCode::conflict
                          : code == "unavailable" ? ErrorCode::unavailable
                                                  : ErrorCode::internal;
            return make_error(c, e.value("message", "unknown error"));
        }
        return msg.value("result", json());
    }
}

} // namespace luaflow::ctl
