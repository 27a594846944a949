#include "daemon/control/socket_server.hpp"

#include "common/json_depth.hpp"
#include "common/log.hpp"
#include "common/protocol.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace luaflow::control {

namespace {

// A client that stops reading while we write gets disconnected past this much queued output.
constexpr std::size_t kMaxQueuedOutput = 64u << 20;
// Requests one connection may have sent ahead of their answers: past it, reading from it waits until
// half of them are answered (back-pressure, as nginx and h2o do for a pipelining client).
constexpr std::size_t kMaxPendingReplies = 1024;
constexpr std::size_t kReadBuffer = 64u << 10;

class Connection;

class ConnectionReply final : public Reply {
  public:
    ConnectionReply(std::weak_ptr<Connection> conn, json id) : conn_(std::move(conn)), id_(std::move(id)) {}
    void event(const json& value) override;
    void events(const std::vector<json>& values) override;
    void result(const json& value) override;
    void result_text(std::string json_text) override;
    void error(const Error& e) override;
    void open_result_array() override;
    void add_result_elements(const std::vector<json>& values) override;
    void close_result_array() override;
    void when_drained(std::function<void()> fn) override;
    bool alive() const override;
    void on_gone(std::function<void()> fn) override { gone_ = std::move(fn); }

    std::deque<std::string> lines; // written once this reply reaches the head of the queue
    bool done = false;
    std::function<void()> gone_;
    std::function<void()> drained_;

  private:
    // Queues text and writes what may be written; false when the client has gone.
    bool send(std::string text);

    std::weak_ptr<Connection> conn_;
    json id_;
    bool array_open_ = false;
    bool array_empty_ = true;
};

class Connection : public std::enable_shared_from_this<Connection> {
  public:
    struct Box {
        uv_pipe_t uv;
        bool closing = false;
        std::shared_ptr<Connection> self; // the connection lives while libuv holds its handle
    };

    Connection(uv_loop_t* loop, Handler& handler) : handler_(handler) {
        handle_ = loop::pipe_handle(loop, new Box());
    }

    uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&handle_->uv); }

    void start() {
        handle_->self = shared_from_this();
        read_start();
    }

    void read_start() {
        int rc = uv_read_start(
            stream(),
            [](uv_handle_t*, size_t, uv_buf_t* buf) {
                // One buffer for every connection of the loop's thread: each read is consumed (copied
                // into the connection's line buffer) before the next is taken. A 64 KiB malloc per read
                // made glibc consolidate its fast bins each time.
                static thread_local const std::unique_ptr<char[]> shared(new char[kReadBuffer]);
                buf->base = shared.get();
                buf->len = kReadBuffer;
            },
            [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
                auto* box = loop::box_of<Box>(s);
                if (!box) return;
                std::shared_ptr<Connection> conn = box->self;
                if (n < 0)
                    conn->close();
                else if (n > 0)
                    conn->on_data(buf->base, static_cast<size_t>(n));
            });
        if (rc != 0) {
            log::warn("control socket: cannot read from a client: %s", uv_strerror(rc));
            close();
        }
    }

    void close() {
        if (!handle_) return;
        // Closed from here on (closed() holds while the replies are dropped); the box holds this
        // connection until libuv has closed the handle.
        loop::UvHandle<Box> handle = std::move(handle_);
        for (auto& r : replies_) {
            // Dropped unrun: they may hold what holds this reply (a stream waiting for the drain).
            auto gone = std::exchange(r->gone_, nullptr);
            r->drained_ = nullptr;
            if (!r->done && gone) gone();
        }
        replies_.clear();
        handle.reset();
    }

    bool closed() const { return !handle_; }

    // Runs the head reply's drain callback once nothing of it waits: no line queued, no write in flight.
    void check_drained() {
        if (closed() || writes_in_flight_ > 0 || replies_.empty()) return;
        std::shared_ptr<ConnectionReply> head = replies_.front();
        if (!head->lines.empty() || !head->drained_) return;
        std::exchange(head->drained_, nullptr)();
    }

    void flush() {
        while (!closed() && !replies_.empty()) {
            // A copy, not a reference: write() may close the connection, which empties the queue.
            std::shared_ptr<ConnectionReply> head = replies_.front();
            while (!head->lines.empty()) {
                std::string line = std::move(head->lines.front());
                head->lines.pop_front();
                write(std::move(line));
                if (closed()) return;
            }
            if (!head->done) break;
            replies_.pop_front();
        }
        if (paused_ && !closed() && replies_.size() <= kMaxPendingReplies / 2) resume();
        close_if_answered();
    }

  private:
    void on_data(const char* data, size_t n) {
        if (discarding_) return;
        buffer_.append(data, n);
        size_t start = 0;
        for (size_t nl; (nl = buffer_.find('\n', start)) != std::string::npos; start = nl + 1) {
            if (replies_.size() >= kMaxPendingReplies) {
                pause();
                break;
            }
            std::string line = buffer_.substr(start, nl - start);
            dispatch(line);
            if (closed()) return;
        }
        buffer_.erase(0, start);
        if (buffer_.size() > protocol::kMaxLine) {
            log::warn("control socket: a request line over %zu bytes; closing the connection",
                      protocol::kMaxLine);
            // The rest is read and dropped (closing with unread input would reset the connection and
            // lose the answers): the client gets an answer that says why, after the answers to what it
            // sent before, then the end of the stream; the connection closes at its end.
            buffer_.clear();
            buffer_.shrink_to_fit();
            discarding_ = true;
            auto reply = std::make_shared<ConnectionReply>(weak_from_this(), json());
            replies_.push_back(reply);
            reply->error(make_error(ErrorCode::invalid, "request line is longer than " +
                                                            std::to_string(protocol::kMaxLine >> 20) +
                                                            " MiB; the connection is closed"));
        }
    }

    // Too many answers outstanding (behind a `wait`, or a client that pipelines faster than commits):
    // no more is read from it until half are answered; what was read stays in the buffer.
    void pause() {
        if (paused_) return;
        paused_ = true;
        uv_read_stop(stream());
        if (!told_paused_)
            log::info("control socket: a client has %zu requests ahead of their answers; reading from it "
                      "waits until it takes them",
                      replies_.size());
        told_paused_ = true;
    }

    void resume() {
        paused_ = false;
        on_data(nullptr, 0); // the lines read before the pause
        if (!paused_ && !closed() && !discarding_) read_start();
    }

    // After an overlong line: once every answer is written, the write side ends (the client reads EOF).
    void close_if_answered() {
        if (!discarding_ || shut_down_ || closed() || !replies_.empty() || writes_in_flight_ > 0) return;
        shut_down_ = true;
        auto* req = new uv_shutdown_t();
        if (uv_shutdown(req, stream(), [](uv_shutdown_t* r, int) { delete r; }) != 0) {
            delete req;
            close();
        }
    }

    void dispatch(const std::string& line) {
        if (line.find_first_not_of(" \t\r") == std::string::npos) return;
        // Replies wait in order behind one that has not ended (a `wait`, a `logs --follow`): on_data stops
        // reading past kMaxPendingReplies, so a client that keeps sending and never reads cannot make them
        // grow without bound.
        bool too_deep = json_nesting_exceeds(line, protocol::kMaxJsonDepth);
        json req = too_deep ? json(json::value_t::discarded) : json::parse(line, nullptr, false);
        json id = req.is_object() && req.contains("id") ? req["id"] : json();
        if (!id.is_null() && !id.is_string() && !id.is_number()) id = json(); // echoed back: keep it plain
        auto reply = std::make_shared<ConnectionReply>(weak_from_this(), id);
        replies_.push_back(reply);
        if (too_deep) {
            reply->error(make_error(ErrorCode::invalid, "request is nested deeper than " +
                                                            std::to_string(protocol::kMaxJsonDepth) +
                                                            " levels"));
            return;
        }
        if (req.is_discarded() || !req.is_object()) {
            reply->error(make_error(ErrorCode::invalid, "request is not a JSON object"));
            return;
        }
        auto method = req.find("method");
        if (method == req.end() || !method->is_string()) {
            reply->error(make_error(ErrorCode::invalid, "request has no \"method\" string"));
            return;
        }
        json params = req.value("params", json::object());
        if (!params.is_object()) {
            reply->error(make_error(ErrorCode::invalid, "\"params\" must be an object"));
            return;
        }
        std::string name = method->get<std::string>();
        // No exception from a handler may reach the loop: it is this request's error.
        try {
            handler_(name, params, reply);
        } catch (const std::exception& e) {
            log::error("control socket: %s failed: %s", name.c_str(), e.what());
            reply->error(make_error(ErrorCode::internal, name + " failed: " + e.what()));
        }
    }

    void write(std::string line) {
        if (closed()) return;
        // A stream waits for its writes to drain before it sends more (Reply::when_drained), so only a
        // client that stops reading while pipelining gets here.
        if (uv_stream_get_write_queue_size(stream()) > kMaxQueuedOutput) {
            log::warn("control socket: client is not reading; closing the connection");
            close();
            return;
        }
        auto* req = new WriteReq();
        req->data = std::move(line);
        req->conn = weak_from_this();
        uv_buf_t buf = uv_buf_init(req->data.data(), static_cast<unsigned>(req->data.size()));
        req->req.data = req;
        int rc = uv_write(&req->req, stream(), &buf, 1, [](uv_write_t* w, int) {
            std::unique_ptr<WriteReq> done(static_cast<WriteReq*>(w->data));
            if (auto conn = done->conn.lock()) {
                --conn->writes_in_flight_;
                conn->check_drained();
                conn->close_if_answered();
            }
        });
        if (rc != 0) {
            delete req;
            close();
            return;
        }
        ++writes_in_flight_;
    }

    struct WriteReq {
        uv_write_t req;
        std::string data;
        std::weak_ptr<Connection> conn;
    };

    Handler& handler_;
    loop::UvHandle<Box> handle_;
    std::string buffer_;
    std::deque<std::shared_ptr<ConnectionReply>> replies_;
    std::size_t writes_in_flight_ = 0;
    bool discarding_ = false;  // an overlong line came: input is dropped
    bool paused_ = false;      // reading waits for answers to be taken (pause())
    bool told_paused_ = false; // the log said so once for this connection
    bool shut_down_ = false;   // ...and the answers are all written
};

std::string dump(const json& value) {
    return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

// {"id": ID, KEY: VALUE} as one line, keys in the order json::dump gives them, without copying VALUE into
// a new document (a page of a stream frames thousands).
std::string frame(const json& id, const char* key, const json& value) {
    std::string id_text = "\"id\":" + dump(id);
    std::string value_text = "\"" + std::string(key) + "\":" + dump(value);
    bool key_first = std::string_view(key) < "id";
    return "{" + (key_first ? value_text : id_text) + "," + (key_first ? id_text : value_text) + "}\n";
}

bool ConnectionReply::send(std::string text) {
    auto conn = conn_.lock();
    if (!conn || conn->closed()) return false;
    lines.push_back(std::move(text));
    conn->flush();
    return true;
}

void ConnectionReply::event(const json& value) {
    if (done) return;
    send(frame(id_, "event", value));
}

void ConnectionReply::events(const std::vector<json>& values) {
    if (done || values.empty()) return;
    std::string text;
    for (const json& v : values)
        text += frame(id_, "event", v);
    send(std::move(text));
}

void ConnectionReply::result(const json& value) {
    if (done) return;
    done = true;
    send(frame(id_, "result", value));
}

void ConnectionReply::result_text(std::string json_text) {
    if (done) return;
    done = true;
    // "result" sorts after "id", as frame() puts them.
    // Framed in place: a document of megabytes is not copied into a second string.
    json_text.insert(0, "{\"id\":" + dump(id_) + ",\"result\":");
    json_text += "}\n";
    send(std::move(json_text));
}

void ConnectionReply::error(const Error& e) {
    if (done) return;
    done = true;
    if (array_open_) {
        // Half of the result line is out: the error cannot be told on this connection any more.
        log::warn("control socket: a streamed answer failed (%s); closing the connection", e.message.c_str());
        if (auto conn = conn_.lock()) conn->close();
        return;
    }
    send(frame(id_, "error", {{"code", to_string(e.code)}, {"message", e.message}}));
}

void ConnectionReply::open_result_array() {
    if (done || array_open_) return;
    array_open_ = true;
    send("{\"id\":" + dump(id_) + ",\"result\":[");
}

void ConnectionReply::add_result_elements(const std::vector<json>& values) {
    if (done || !array_open_ || values.empty()) return;
    std::string text;
    for (const json& v : values) {
        if (!std::exchange(array_empty_, false)) text += ',';
        text += dump(v);
    }
    send(std::move(text));
}

void ConnectionReply::close_result_array() {
    if (done || !array_open_) return;
    done = true;
    send("]}\n");
}

void ConnectionReply::when_drained(std::function<void()> fn) {
    if (done) return;
    auto conn = conn_.lock();
    if (!conn || conn->closed()) return;
    drained_ = std::move(fn);
    conn->check_drained();
}

bool ConnectionReply::alive() const {
    auto conn = conn_.lock();
    return conn && !conn->closed();
}

// True when something answers on the socket path (another daemon).
bool socket_in_use(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    bool used = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return used;
}

} // namespace

SocketServer::SocketServer(uv_loop_t* loop, Handler handler) : loop_(loop), handler_(std::move(handler)) {}

SocketServer::~SocketServer() {
    close();
}

Result<void> SocketServer::listen(const std::string& path, std::optional<unsigned> mode,
                                  const std::string& group) {
    if (path.size() >= sizeof(sockaddr_un{}.sun_path))
        return make_error(ErrorCode::invalid, "socket path " + path + " is too long for a Unix socket");
    std::error_code ec;
    std::filesystem::path parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (socket_in_use(path))
        return make_error(ErrorCode::conflict, "another luaflowd is listening on " + path);
    ::unlink(path.c_str()); // a stale socket of a daemon that died
    auto* box = new ServerBox();
    box->owner = this;
    server_ = loop::pipe_handle(loop_, box);
    int rc = uv_pipe_bind(&box->uv, path.c_str());
    if (rc == 0)
        rc = uv_listen(reinterpret_cast<uv_stream_t*>(&box->uv), 128, [](uv_stream_t* s, int status) {
            auto* b = loop::box_of<ServerBox>(reinterpret_cast<uv_pipe_t*>(s));
            if (b && status == 0) b->owner->on_connection();
        });
    if (rc != 0) {
        server_.reset();
        return make_error(ErrorCode::unavailable, "cannot listen on " + path + ": " + uv_strerror(rc));
    }
    path_ = path;
    if (mode && ::chmod(path.c_str(), *mode) != 0)
        log::warn("cannot set mode %o on %s: %s", *mode, path.c_str(), std::strerror(errno));
    if (!group.empty()) {
        if (struct group* g = ::getgrnam(group.c_str())) {
            if (::chown(path.c_str(), static_cast<uid_t>(-1), g->gr_gid) != 0)
                log::warn("cannot give %s to group %s: %s", path.c_str(), group.c_str(),
                          std::strerror(errno));
        } else {
            log::warn("socket group '%s' does not exist", group.c_str());
        }
    }
    return {};
}

void SocketServer::on_connection() {
    auto conn = std::make_shared<Connection>(loop_, handler_);
    if (uv_accept(reinterpret_cast<uv_stream_t*>(&server_->uv), conn->stream()) != 0) {
        conn->close();
        return;
    }
    conn->start();
    std::weak_ptr<Connection> weak = conn;
    // Forget connections that have gone, so the list does not grow with every client.
    std::erase_if(connections_, [](const auto& c) { return c.first.expired(); });
    connections_.emplace_back(std::weak_ptr<void>(conn), [weak] {
        if (auto c = weak.lock()) c->close();
    });
}

void SocketServer::close() {
    for (auto& c : connections_)
        c.second();
    connections_.clear();
    if (!server_) return;
    server_.reset();
    if (!path_.empty()) ::unlink(path_.c_str());
    path_.clear();
}

} // namespace luaflow::control
