// The HTTP server of luaflow-http.so (daemon/http/module.hpp): libh2o 2.2 (Debian's, its libuv flavour) on
// the daemon's loop. libh2o parses the requests, reads the bodies (refusing one over max_request_entity_size
// with 413 before reading it), and times out slow and idle clients (http1.req_timeout); this file checks
// the bearer token and hands each request to the daemon's Routes.
//
// A server lives to the end of the process: libh2o 2.2 cannot dispose of its context from inside a loop
// callback (h2o_context_dispose runs the loop itself). close() stops listening, ends every connection
// (shutdown(2): libh2o then closes each through its own path) and, once they are closed, closes the context's
// handles, so that the loop can end; the memory stays reachable from kLastServer.
//
// It calls libuv itself rather than through loop/uv_handle: it is a shared object of its own, which does not
// link the engine (that would be a second copy of it), and libh2o owns the handles it gets.
#define H2O_USE_LIBUV 1
#include "daemon/http/module.hpp"

#include <h2o.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <string_view>
#include <utility>
#include <vector>

namespace luaflow::http {

namespace {

class H2oServer;

struct PathHandler {
    h2o_handler_t super; // first: libh2o hands us &super
    H2oServer* server;
};

// An accepted connection's handle (first: libh2o's close callback gets it), in the server's list.
struct Connection {
    uv_tcp_t tcp;
    H2oServer* server;
    Connection* prev = nullptr;
    Connection* next = nullptr;
};

const char* reason_of(int status) {
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Entity";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "";
    }
}

void add_header(h2o_req_t* req, const h2o_token_t* token, std::string_view value) {
    // libh2o keeps the pointer: the value is copied into the request's pool.
    h2o_iovec_t v = h2o_strdup(&req->pool, value.data(), value.size());
    h2o_add_header(&req->pool, &req->res.headers, token, nullptr, v.base, v.len);
}

void respond(h2o_req_t* req, int status, std::string_view content_type, std::string_view body) {
    req->res.status = status;
    req->res.reason = reason_of(status);
    req->res.content_length = body.size();
    add_header(req, H2O_TOKEN_CONTENT_TYPE, content_type);
    h2o_send_inline(req, body.data(), body.size()); // copies the body
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

class H2oResponse;

// In the request's memory pool: libh2o frees the pool when the request ends or its client goes, and the
// dispose callback tells the response.
struct RequestGuard {
    H2oResponse* response;
};

// A streamed answer's generator, in the request's pool: libh2o calls `proceed` once what was sent has
// been written, `stop` if the client goes.
struct StreamGenerator {
    h2o_generator_t super; // first: libh2o hands us &super
    H2oResponse* response;
};

class H2oResponse final : public Response, public std::enable_shared_from_this<H2oResponse> {
  public:
    explicit H2oResponse(h2o_req_t* req) : req_(req) {
        guard_ =
            static_cast<RequestGuard*>(h2o_mem_alloc_shared(&req->pool, sizeof(RequestGuard), on_dispose));
        guard_->response = this;
    }
    ~H2oResponse() override {
        if (!req_) return;
        // Dropped unanswered (a route's bug, or the daemon's end): the client still gets an answer, or its
        // stream an end when none is being written.
        if (!generator_) {
            send(500, "application/json", R"({"error":"no answer was made to this request"})");
            return;
        }
        if (!sending_) {
            end();
            return;
        }
        // libh2o still writes the buffer: it lives on with the request's memory.
        auto* holder = static_cast<std::shared_ptr<std::string>*>(
            h2o_mem_alloc_shared(&req_->pool, sizeof(std::shared_ptr<std::string>), [](void* p) {
                static_cast<std::shared_ptr<std::string>*>(p)->~shared_ptr();
            }));
        new (holder) std::shared_ptr<std::string>(std::move(in_flight_));
        release();
    }

    void send(int status, const std::string& content_type, std::string body) override {
        if (!req_ || generator_) return;
        respond(release(), status, content_type, body);
    }
    bool alive() const override { return req_ != nullptr; }
    void on_gone(std::function<void()> fn) override { on_gone_ = std::move(fn); }

    void start_stream(int status, const std::string& content_type) override {
        if (!req_ || generator_) return;
        generator_ = static_cast<StreamGenerator*>(h2o_mem_alloc_pool(&req_->pool, sizeof(StreamGenerator)));
        generator_->super.proceed = on_proceed;
        generator_->super.stop = on_stop;
        generator_->response = this;
        self_ = shared_from_this(); // a stream lives until its last chunk is handed over or its client goes
        req_->res.status = status;
        req_->res.reason = reason_of(status);
        add_header(req_, H2O_TOKEN_CONTENT_TYPE, content_type);
        add_header(req_, H2O_TOKEN_CACHE_CONTROL, "no-cache");
        h2o_start_response(req_, &generator_->super);
    }
    void write(std::string chunk) override {
        if (!req_ || !generator_ || ending_) return;
        pending_ += chunk;
        flush();
    }
    void when_drained(std::function<void()> fn) override {
        drained_ = std::move(fn);
        flush();
    }
    void end() override {
        if (!req_ || !generator_ || ending_) return;
        ending_ = true;
        flush();
    }

  private:
    h2o_req_t* release() {
        h2o_req_t* req = req_;
        req_ = nullptr;
        guard_->response = nullptr;
        if (generator_) generator_->response = nullptr;
        return req;
    }

    // Sends what is pending unless a send is in flight (libh2o takes one at a time, and the buffer must
    // live until its `proceed`).
    void flush() {
        if (!req_ || !generator_ || sending_) return;
        if (pending_.empty() && !ending_) {
            if (auto fn = std::exchange(drained_, nullptr)) fn();
            return;
        }
        sending_ = true;
        if (ending_) {
            std::shared_ptr<H2oResponse> keep = std::move(self_); // `this` lives to the end of the call
            // The last chunk lives in the request's memory, which libh2o frees once it is written.
            h2o_iovec_t buf = h2o_strdup(&req_->pool, pending_.data(), pending_.size());
            pending_.clear();
            h2o_req_t* req = release(); // the request may be freed inside h2o_send
            h2o_send(req, &buf, buf.len ? 1 : 0, H2O_SEND_STATE_FINAL);
            return;
        }
        in_flight_ = std::make_shared<std::string>(std::move(pending_));
        pending_.clear();
        h2o_iovec_t buf = h2o_iovec_init(in_flight_->data(), in_flight_->size());
        h2o_send(req_, &buf, 1, H2O_SEND_STATE_IN_PROGRESS);
    }

    static void on_proceed(h2o_generator_t* g, h2o_req_t*) {
        H2oResponse* r = reinterpret_cast<StreamGenerator*>(g)->response;
        if (!r) return;
        r->sending_ = false;
        r->in_flight_.reset();
        r->flush();
    }
    static void on_stop(h2o_generator_t* g, h2o_req_t*) {
        if (H2oResponse* r = reinterpret_cast<StreamGenerator*>(g)->response) r->gone();
    }
    static void on_dispose(void* p) {
        if (H2oResponse* r = static_cast<RequestGuard*>(p)->response) r->gone();
    }
    void gone() {
        std::shared_ptr<H2oResponse> keep = std::move(self_);
        if (!req_) return;
        req_ = nullptr;
        guard_->response = nullptr;
        if (generator_) generator_->response = nullptr;
        drained_ = nullptr;
        if (auto fn = std::exchange(on_gone_, nullptr)) fn();
    }

    h2o_req_t* req_;
    RequestGuard* guard_;
    StreamGenerator* generator_ = nullptr;
    std::string pending_;                    // written, not yet handed to libh2o
    std::shared_ptr<std::string> in_flight_; // handed to libh2o, until its proceed (its bytes never move)
    bool sending_ = false;
    bool ending_ = false;
    std::function<void()> drained_;
    std::function<void()> on_gone_;
    std::shared_ptr<H2oResponse> self_; // while streaming
};

// The servers made, each linking the one before (see the top of the file). A plain pointer, not a
// container: the module's static destructors run before LeakSanitizer looks at the end of the process,
// and a destroyed container would leave the servers unreachable.
H2oServer* kLastServer = nullptr;

class H2oServer final : public Server {
  public:
    H2oServer(uv_loop_t* loop, const Options& options, Routes* routes)
        : loop_(loop), options_(options), routes_(routes) {
        set_token(options_.token);
    }

    void set_token(const std::string& token) override {
        options_.token = token;
        SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), token_sha_);
    }

    bool listen(std::string* error) {
        h2o_config_init(&config_);
        config_.server_name = h2o_iovec_init(H2O_STRLIT("luaflowd"));
        config_.max_request_entity_size = options_.max_body;
        config_.http1.req_timeout = options_.request_timeout_ms;
        config_.http2.idle_timeout = options_.request_timeout_ms;
        h2o_hostconf_t* host =
            h2o_config_register_host(&config_, h2o_iovec_init(H2O_STRLIT("default")), 65535);
        h2o_pathconf_t* path = h2o_config_register_path(host, "/", 0);
        auto* handler = reinterpret_cast<PathHandler*>(h2o_create_handler(path, sizeof(PathHandler)));
        handler->super.on_req = on_req;
        handler->server = this;
        // The handles libh2o makes for its context (timers, a wake-up): unref'd at close.
        std::vector<uv_handle_t*> before = handles();
        h2o_context_init(&ctx_, loop_, &config_);
        for (uv_handle_t* h : handles())
            if (std::find(before.begin(), before.end(), h) == before.end()) own_handles_.push_back(h);
        accept_ctx_.ctx = &ctx_;
        accept_ctx_.hosts = config_.hosts;

        sockaddr_storage addr{};
        int rc =
            options_.host.find(':') != std::string::npos
                ? uv_ip6_addr(options_.host.c_str(), options_.port, reinterpret_cast<sockaddr_in6*>(&addr))
                : uv_ip4_addr(options_.host.c_str(), options_.port, reinterpret_cast<sockaddr_in*>(&addr));
        if (rc != 0) {
            *error = "http.listen: '" + options_.host + "' is not a numeric IPv4 or IPv6 address";
            return false;
        }
        uv_tcp_init(loop_, &listener_);
        listener_.data = this;
        listening_ = true;
        rc = uv_tcp_bind(&listener_, reinterpret_cast<const sockaddr*>(&addr), 0);
        if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 128, on_accept);
        if (rc != 0) {
            *error = "http.listen: cannot listen on " + options_.host + ":" + std::to_string(options_.port) +
                     ": " + uv_strerror(rc);
            close();
            return false;
        }
        sockaddr_storage bound{};
        int len = sizeof bound;
        uv_tcp_getsockname(&listener_, reinterpret_cast<sockaddr*>(&bound), &len);
        port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                  : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
        return true;
    }

    void close() override {
        if (closed_) return;
        closed_ = true;
        if (listening_) uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
        h2o_context_request_shutdown(&ctx_);
        for (Connection* c = connections_; c; c = c->next) {
            uv_os_fd_t fd;
            if (uv_fileno(reinterpret_cast<uv_handle_t*>(&c->tcp), &fd) == 0) ::shutdown(fd, SHUT_RDWR);
        }
        close_own_handles_when_idle();
    }

    int port() const override { return port_; }
    H2oServer* previous = nullptr; // kLastServer's chain

    // After close(), once the last connection has closed: libh2o's context handles are closed too (nothing
    // of libh2o runs after that), so that the loop ends and uv_loop_close frees it. The context itself is
    // never disposed of (see the top of the file).
    void close_own_handles_when_idle() {
        if (!closed_ || count_ > 0) return;
        for (uv_handle_t* h : own_handles_)
            if (!uv_is_closing(h)) uv_close(h, nullptr);
        own_handles_.clear();
    }

    bool signature_matches(const std::string& secret, const std::string& body,
                           const std::string& signature) const override {
        constexpr std::string_view kPrefix = "sha256=";
        if (signature.size() != kPrefix.size() + 2 * SHA256_DIGEST_LENGTH || !signature.starts_with(kPrefix))
            return false;
        unsigned char given[SHA256_DIGEST_LENGTH];
        for (std::size_t i = 0; i < sizeof given; ++i) {
            int hi = hex_digit(signature[kPrefix.size() + 2 * i]),
                lo = hex_digit(signature[kPrefix.size() + 2 * i + 1]);
            if (hi < 0 || lo < 0) return false;
            given[i] = static_cast<unsigned char>(hi * 16 + lo);
        }
        unsigned char expected[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        if (!HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
                  reinterpret_cast<const unsigned char*>(body.data()), body.size(), expected, &len) ||
            len != SHA256_DIGEST_LENGTH)
            return false;
        return CRYPTO_memcmp(given, expected, sizeof given) == 0;
    }

  private:
    std::vector<uv_handle_t*> handles() const {
        std::vector<uv_handle_t*> out;
        uv_walk(
            loop_,
            [](uv_handle_t* h, void* arg) { static_cast<std::vector<uv_handle_t*>*>(arg)->push_back(h); },
            &out);
        return out;
    }

    bool authorised(h2o_req_t* req) const {
        ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
        if (i < 0 || options_.token.empty()) return false;
        std::string_view value(req->headers.entries[i].value.base, req->headers.entries[i].value.len);
        if (value.size() < 7 || strncasecmp(value.data(), "Bearer ", 7) != 0) return false;
        value.remove_prefix(7);
        // Digests compared in constant time: neither the token's bytes nor its length show in the timing.
        unsigned char given[SHA256_DIGEST_LENGTH];
        SHA256(reinterpret_cast<const unsigned char*>(value.data()), value.size(), given);
        return CRYPTO_memcmp(given, token_sha_, sizeof given) == 0;
    }

    static int on_req(h2o_handler_t* self, h2o_req_t* req) {
        H2oServer* s = reinterpret_cast<PathHandler*>(self)->server;
        Request r;
        r.method.assign(req->method.base, req->method.len);
        r.path.assign(req->path_normalized.base, req->path_normalized.len);
        if (req->query_at != SIZE_MAX)
            r.query.assign(req->path.base + req->query_at + 1, req->path.len - req->query_at - 1);
        bool open = r.path == "/healthz" || r.path.starts_with("/hooks/");
        if (!open && !s->authorised(req)) {
            add_header(req, H2O_TOKEN_WWW_AUTHENTICATE, "Bearer");
            respond(req, 401, "application/json",
                    "{\"error\":\"this endpoint needs the header Authorization: Bearer TOKEN "
                    "(http.token_file)\"}");
            return 0;
        }
        if (ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1); i >= 0)
            r.content_type.assign(req->headers.entries[i].value.base, req->headers.entries[i].value.len);
        static const h2o_iovec_t kSignature = h2o_iovec_init(H2O_STRLIT("x-luaflow-signature"));
        if (ssize_t i = h2o_find_header_by_str(&req->headers, kSignature.base, kSignature.len, -1); i >= 0)
            r.signature.assign(req->headers.entries[i].value.base, req->headers.entries[i].value.len);
        if (req->entity.base) r.body.assign(req->entity.base, req->entity.len);
        s->routes_->handle(std::move(r), std::make_shared<H2oResponse>(req));
        return 0;
    }

    static void on_accept(uv_stream_t* listener, int status) {
        auto* s = static_cast<H2oServer*>(listener->data);
        if (status != 0 || s->closed_) return;
        auto* c = new Connection();
        c->server = s;
        uv_tcp_init(listener->loop, &c->tcp);
        if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0 ||
            s->count_ >= s->options_.max_connections) {
            if (s->count_ >= s->options_.max_connections && s->options_.log && !s->said_full_) {
                s->said_full_ = true;
                s->options_.log(1, ("HTTP: " + std::to_string(s->count_) +
                                    " connections open (the most); closing new ones until some end")
                                       .c_str());
            }
            uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp),
                     [](uv_handle_t* h) { delete reinterpret_cast<Connection*>(h); });
            return;
        }
        ++s->count_;
        c->next = s->connections_;
        if (c->next) c->next->prev = c;
        s->connections_ = c;
        // libh2o owns the stream from here (its `data` is libh2o's); the callback runs once it is closed.
        h2o_socket_t* sock = h2o_uv_socket_create(reinterpret_cast<uv_stream_t*>(&c->tcp), on_closed);
        h2o_accept(&s->accept_ctx_, sock);
    }

    static void on_closed(uv_handle_t* h) {
        auto* c = reinterpret_cast<Connection*>(h);
        H2oServer* s = c->server;
        if (c->prev) c->prev->next = c->next;
        if (c->next) c->next->prev = c->prev;
        if (s->connections_ == c) s->connections_ = c->next;
        if (--s->count_ < s->options_.max_connections) s->said_full_ = false;
        delete c;
        s->close_own_handles_when_idle();
    }

    uv_loop_t* loop_;
    Options options_;
    Routes* routes_;
    unsigned char token_sha_[SHA256_DIGEST_LENGTH];
    h2o_globalconf_t config_{};
    h2o_context_t ctx_{};
    h2o_accept_ctx_t accept_ctx_{};
    uv_tcp_t listener_{};
    bool listening_ = false;
    bool closed_ = false;
    int port_ = 0;
    int count_ = 0;
    bool said_full_ = false;
    Connection* connections_ = nullptr;
    std::vector<uv_handle_t*> own_handles_;
};

} // namespace

} // namespace luaflow::http

extern "C" __attribute__((visibility("default"))) luaflow::http::Server*
luaflow_http_start(uv_loop_t* loop, const luaflow::http::Options& options, luaflow::http::Routes* routes,
                   std::string* error) {
    auto* server = new luaflow::http::H2oServer(loop, options, routes);
    server->previous = luaflow::http::kLastServer;
    luaflow::http::kLastServer = server;
    if (!server->listen(error)) return nullptr;
    return server;
}
