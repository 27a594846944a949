#pragma once
// The control socket (SPEC 6, common/protocol.hpp): newline-delimited JSON requests and answers over a
// Unix stream socket. Requests of one connection may be answered out of order internally but are
// written back in request order, so a client may pipeline.
#include "common/result.hpp"
#include "loop/uv_handle.hpp"

#include <nlohmann/json.hpp>

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace luaflow::control {

using nlohmann::json;

// The answer to one request; `event` lines precede the final `result` or `error`.
class Reply {
  public:
    virtual ~Reply() = default;
    virtual void event(const json& value) = 0;
    // Several event lines in one write (a page of a stream).
    virtual void events(const std::vector<json>& values) = 0;
    virtual void result(const json& value) = 0;
    // A result serialised already, as one JSON value without a newline (one built off the loop).
    virtual void result_text(std::string json_text) = 0;
    virtual void error(const Error& error) = 0;
    // A result that is a long array, sent in parts as it is produced so that neither side holds all of it:
    // open, add elements (a page at a time), close. The wire shows one ordinary result line.
    virtual void open_result_array() = 0;
    virtual void add_result_elements(const std::vector<json>& values) = 0;
    virtual void close_result_array() = 0;
    // Calls fn once everything this reply has sent so far is written to the socket: the moment to
    // produce the next page (backpressure: a client that reads slowly gets pages slowly, and what waits
    // for it stays one page). Never called if the client goes first. Call it after sending something.
    virtual void when_drained(std::function<void()> fn) = 0;
    // False once the client has gone; long-running handlers stop then.
    virtual bool alive() const = 0;
    // Called when the client goes away before the final answer (to drop watches).
    virtual void on_gone(std::function<void()> fn) = 0;
};

using Handler =
    std::function<void(const std::string& method, const json& params, std::shared_ptr<Reply> reply)>;

class SocketServer {
  public:
    SocketServer(uv_loop_t* loop, Handler handler);
    ~SocketServer();
    SocketServer(const SocketServer&) = delete;
    SocketServer& operator=(const SocketServer&) = delete;

    // Binds and listens; `mode` (e.g. 0660) and `group` are applied to the socket file when given.
    Result<void> listen(const std::string& path, std::optional<unsigned> mode, const std::string& group);
    // Stops accepting and closes every connection.
    void close();

  private:
    struct ServerBox {
        uv_pipe_t uv;
        bool closing = false;
        SocketServer* owner = nullptr;
    };
    void on_connection();

    uv_loop_t* loop_;
    Handler handler_;
    std::string path_;
    loop::UvHandle<ServerBox> server_;
    // One per open connection: whether it is still there, and how to close it.
    std::vector<std::pair<std::weak_ptr<void>, std::function<void()>>> connections_;
};

} // namespace luaflow::control
