#pragma once
// luaflowctl's side of the control socket (common/protocol.hpp): one blocking connection, one
// request at a time. luaflowctl is a short-lived client, so blocking here is the simple, right thing.
#include "common/result.hpp"

#include <nlohmann/json.hpp>

#include <functional>
#include <string>

namespace luaflow::ctl {

using nlohmann::json;

class Client {
  public:
    ~Client();
    // Connects to the daemon's socket; an `unavailable` error when nothing answers there.
    static Result<Client> connect(const std::string& path);
    Client(Client&& o) noexcept;
    Client& operator=(Client&&) = delete;
    Client(const Client&) = delete;

    // Sends one request and returns its final result; each event line before it goes to on_event.
    // A daemon error comes back as an Error with the daemon's code.
    Result<json> call(const std::string& method, const json& params,
                      const std::function<void(const json&)>& on_event = nullptr);

  private:
    explicit Client(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
    Result<std::string> read_line();

    int fd_ = -1;
    std::string path_;
    std::string buffer_;
    int next_id_ = 1;
};

// The socket path: --socket, else $LUAFLOW_SOCKET, else the default.
std::string socket_path(const std::string& flag);

} // namespace luaflow::ctl
