#pragma once
// luaflowctl's side of the control socket (common/protocol.hpp): one blocking connection, one request at
// a time. luaflowctl is a short-lived client that has nothing else to do while it waits, so blocking
// reads are the simple, right thing here (the daemon is the one that must never block).
#include "common/result.hpp"

#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>

namespace luaflow::ctl {

using nlohmann::json;

// Why a call has no result: the daemon answered with an error, or no answer came at all.
struct CallError {
    Error error;
    bool reached = true; // false: could not connect, or the connection broke before the answer
};

// One call's outcome: the daemon's result, or a CallError.
class [[nodiscard]] Reply {
  public:
    Reply(json result) : result_(std::move(result)) {}
    Reply(CallError error) : error_(std::move(error)) {}
    bool ok() const { return !error_; }
    explicit operator bool() const { return ok(); }
    json& operator*() { return result_; }
    json* operator->() { return &result_; }
    const CallError& error() const { return *error_; }

  private:
    json result_;
    std::optional<CallError> error_;
};

class Client {
  public:
    // Remembers the socket; the connection is made by the first call.
    explicit Client(std::string socket_path) : path_(std::move(socket_path)) {}
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    // Sends one request and waits for its final line; each event line before it goes to on_event.
    Reply call(const std::string& method, const json& params,
               const std::function<void(const json&)>& on_event = nullptr);

  private:
    std::optional<CallError> connect();
    std::optional<CallError> send_line(const std::string& line);
    std::optional<std::string> read_line(); // nullopt when the daemon closed the connection

    std::string path_;
    int fd_ = -1;
    std::string buffer_; // read, from start_ on not yet returned
    std::size_t start_ = 0;
    int next_id_ = 1;
};

// The socket path: --socket, else $LUAFLOW_SOCKET, else protocol::kDefaultSocket.
std::string socket_path(const std::string& flag);

} // namespace luaflow::ctl
