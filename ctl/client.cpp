#include "ctl/client.hpp"

#include "common/protocol.hpp"
#include "common/size.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace luaflow::ctl {

namespace {

CallError unreachable(const std::string& path, const std::string& why) {
    return CallError{make_error(ErrorCode::unavailable, "cannot reach luaflowd at " + path + ": " + why),
                     false};
}

// The daemon's error codes (common/protocol.hpp), spelled as ErrorCode's to_string spells them.
ErrorCode parse_error_code(const std::string& code) {
    for (ErrorCode c :
         {ErrorCode::invalid, ErrorCode::not_found, ErrorCode::conflict, ErrorCode::unavailable})
        if (code == to_string(c)) return c;
    return ErrorCode::internal;
}

} // namespace

std::string socket_path(const std::string& flag) {
    if (!flag.empty()) return flag;
    if (const char* env = std::getenv("LUAFLOW_SOCKET"); env && *env) return env;
    return protocol::kDefaultSocket;
}

Client::~Client() {
    if (fd_ >= 0) ::close(fd_);
}

std::optional<CallError> Client::connect() {
    sockaddr_un addr{};
    if (path_.size() >= sizeof addr.sun_path) return unreachable(path_, std::strerror(ENAMETOOLONG));
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return unreachable(path_, std::strerror(errno));
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        int e = errno;
        ::close(fd);
        return unreachable(path_, std::strerror(e));
    }
    fd_ = fd;
    return std::nullopt;
}

std::optional<CallError> Client::send_line(const std::string& line) {
    for (size_t off = 0; off < line.size();) {
        // MSG_NOSIGNAL: a daemon that went away must give an error here, not kill us with SIGPIPE.
        ssize_t n = ::send(fd_, line.data() + off, line.size() - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return unreachable(path_, std::strerror(errno));
        off += static_cast<size_t>(n);
    }
    return std::nullopt;
}

std::optional<std::string> Client::read_line() {
    for (size_t scanned = start_;;) {
        if (size_t nl = buffer_.find('\n', scanned); nl != std::string::npos) {
            // The buffer holds many short lines of a stream: step over each, move the rest only once.
            std::string line = buffer_.substr(start_, nl - start_);
            start_ = nl + 1;
            return line;
        }
        buffer_.erase(0, start_);
        start_ = 0;
        scanned = buffer_.size();
        char buf[65536];
        ssize_t n = ::read(fd_, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return std::nullopt;
        buffer_.append(buf, static_cast<size_t>(n));
    }
}

Reply Client::call(const std::string& method, const json& params,
                   const std::function<void(const json&)>& on_event) {
    int id = next_id_++;
    json request = {{"id", id}, {"method", method}, {"params", params}};
    std::string request_line = request.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    // luaflowd closes a connection whose request line is longer: say so instead of "cannot reach".
    if (request_line.size() > protocol::kMaxLine)
        return CallError{make_error(ErrorCode::invalid, "the " + method + " request is " +
                                                            format_size(request_line.size()) +
                                                            " as JSON; luaflowd takes requests up to " +
                                                            format_size(protocol::kMaxLine))};
    if (fd_ < 0)
        if (auto failed = connect()) return *failed;
    if (auto failed = send_line(request_line)) return *failed;
    for (;;) {
        auto line = read_line();
        if (!line)
            return CallError{make_error(ErrorCode::unavailable,
                                        "luaflowd at " + path_ + " closed the connection before answering"),
                             false};
        json msg = json::parse(*line, nullptr, false);
        if (msg.is_discarded() || !msg.is_object())
            return CallError{
                make_error(ErrorCode::internal, "luaflowd sent a line that is not JSON: " + *line)};
        if (auto event = msg.find("event"); event != msg.end()) {
            if (on_event) on_event(*event);
            continue;
        }
        if (auto error = msg.find("error"); error != msg.end()) {
            std::string code = error->is_object() ? error->value("code", "internal") : "internal";
            std::string message = error->is_object() ? error->value("message", "") : error->dump();
            return CallError{make_error(parse_error_code(code), message.empty() ? code : message)};
        }
        auto result = msg.find("result");
        return result == msg.end() ? json() : *result;
    }
}

} // namespace luaflow::ctl
