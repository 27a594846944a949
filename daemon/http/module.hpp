#pragma once
// What the daemon and its HTTP module (luaflow-http.so, daemon/http/h2o/) say to each other. The module
// holds the HTTP server (libh2o, on the daemon's own libuv loop) and the crypto it needs (libcrypto, through
// libh2o): the daemon loads it only when `http.listen` is set, so a daemon without the HTTP API maps
// neither (libh2o with OpenSSL is 2 MiB of an idle daemon's 7). Nothing here is a libh2o type; the
// calls across are virtual, so the module needs no symbol of the daemon.
#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace luaflow::http {

struct Request {
    std::string method;
    std::string path;  // normalised (no "." or ".."), without the query
    std::string query; // what follows '?', as sent
    std::string content_type;
    std::string signature; // the X-Luaflow-Signature header (webhooks), as sent
    std::string body;      // whole: the module has read it (at most Options::max_body)
};

// The answer to one request; the module's. Calls after the first send, or once the client has gone,
// do nothing.
class Response {
  public:
    virtual ~Response() = default;
    virtual void send(int status, const std::string& content_type, std::string body) = 0;
    // False once the client has gone (it closed, or the connection timed out).
    virtual bool alive() const = 0;
    // Runs `fn` if the client goes before the answer has ended (not after end() or send()).
    virtual void on_gone(std::function<void()> fn) = 0;

    // A streamed answer (a long log, Server-Sent Events) instead of send(): the status and headers now,
    // then chunks as they come (chunked transfer), then end(). `when_drained` runs `fn` once everything
    // written so far has gone to the client (never if the client goes first): the moment to write more.
    virtual void start_stream(int status, const std::string& content_type) = 0;
    virtual void write(std::string chunk) = 0;
    virtual void when_drained(std::function<void()> fn) = 0;
    virtual void end() = 0;
};

// The daemon's side: every authorised request (see Options::token) comes here, on the loop.
class Routes {
  public:
    virtual void handle(Request request, std::shared_ptr<Response> response) = 0;

  protected:
    ~Routes() = default;
};

struct Options {
    std::string host; // numeric IPv4 or IPv6 address
    int port = 0;     // 0: any free port (Server::port says which)
    // Compared in constant time with the `Authorization: Bearer` header of every request but those for
    // /healthz and /hooks/* (SPEC 7); a request without it, or with another, gets 401 here.
    std::string token;
    std::size_t max_body = 1u << 20;          // a larger body gets 413 before it is read
    std::uint64_t request_timeout_ms = 10000; // a request's headers and body, and an idle keep-alive
    int max_connections = 256;                // beyond it a new connection is closed at once
    // The module's messages, for the daemon's log (level: 0 error, 1 warning, 2 info).
    void (*log)(int level, const char* message) = nullptr;
};

class Server {
  public:
    virtual ~Server() = default;
    // Stops listening and closes every connection; answers in flight are dropped.
    virtual void close() = 0;
    virtual int port() const = 0;
    // From now on the bearer token is `token` (the daemon's SIGHUP re-reads http.token_file); requests
    // already authorised are not asked again.
    virtual void set_token(const std::string& token) = 0;
    // Whether `signature` is "sha256=" and the hex HMAC-SHA256 of `body` under `secret` (libcrypto's,
    // compared in constant time): a webhook's check (SPEC 7).
    virtual bool signature_matches(const std::string& secret, const std::string& body,
                                   const std::string& signature) const = 0;
};

// The module's one exported function: a server listening per `options`, or null with `error` set.
using StartServer = Server* (*)(uv_loop_t* loop, const Options& options, Routes* routes, std::string* error);
inline constexpr const char* kStartServerSymbol = "luaflow_http_start";
inline constexpr const char* kModuleFile = "luaflow-http.so";

} // namespace luaflow::http
