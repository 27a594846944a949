#pragma once
// libcurl's multi interface driven by the libuv loop (curl docs/examples/multi-uv.c): one uv_poll_t per
// socket curl asks us to watch and one uv_timer_t for curl's timeout, so that no transfer ever blocks
// the loop (STYLE 2.4). Generic: http.* (one multi for every sandbox, exec/engine_services) and the
// notification outbox (one of its own, notifiers/outbox: its deliveries neither wait behind the actions'
// requests for a host's connections nor outlive its owner) hand their easy handles here; each multi
// keeps one connection cache and DNS cache for its transfers. libcurl itself comes from loop/curl_api.hpp: a
// CurlMulti is made only once a request needs it, with the table that loaded the library.
#include "loop/curl_api.hpp"
#include "loop/uv_handle.hpp"

#include <curl/curl.h>
#include <uv.h>

#include <cstdint>
#include <functional>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace luaflow::loop {

class CurlMulti {
  public:
    // Connections kept per host at once (more transfers to one host wait for a free one), and idle
    // connections kept open for reuse across all hosts.
    static constexpr long kMaxHostConnections = 64;
    static constexpr long kMaxIdleConnections = 128;
    static constexpr std::size_t kMaxIdleEasies = 64;

    // `api` is curl_api()'s table (tests may pass another), kept for the multi's life.
    CurlMulti(uv_loop_t* loop, const CurlApi& api);
    // Removes every transfer (no callback follows) and closes the handles; the caller still owns and
    // frees its easy handles, and releases those of acquire() before. Run the loop afterwards so that
    // the close callbacks free the uv handles.
    ~CurlMulti();
    CurlMulti(const CurlMulti&) = delete;
    CurlMulti& operator=(const CurlMulti&) = delete;

    // Starts the transfer of `easy` (set up by the caller, who keeps owning it). `done` is called once,
    // from the top of a libuv callback and never before add() returns, with curl's result; by then
    // the easy handle is out of the multi and may be freed or reused. `done` must not destroy this
    // multi. Sets the easy's CURLOPT_OPENSOCKETFUNCTION and CURLOPT_CLOSESOCKETFUNCTION (the multi
    // keeps the connections' polls across transfers). Returns the error of curl_multi_add_handle
    // (then no callback follows).
    [[nodiscard]] CURLMcode add(CURL* easy, std::function<void(CURLcode)> done);
    // Cancels the transfer of `easy`: no callback follows. Does nothing for an unknown handle.
    void remove(CURL* easy);
    // An easy handle in curl's default state: a released one (its buffers already allocated) or a new
    // one; nullptr when out of memory. Give it back with release() or free it with api().easy_cleanup.
    CURL* acquire();
    // Takes back a handle from acquire(), removing its transfer first if there is one; it is reset and
    // kept for the next acquire() (up to kMaxIdleEasies), else freed.
    void release(CURL* easy);
    // Transfers added and not yet finished or removed.
    std::size_t size() const { return transfers_.size(); }
    // The libcurl functions, for the callers' own calls on their easy handles.
    const CurlApi& api() const { return curl_; }

  private:
    struct PollBox {
        uv_poll_t uv;
        bool closing = false;
        CurlMulti* owner = nullptr;
        curl_socket_t fd = CURL_SOCKET_BAD;
        int events = 0; // what curl asked for (UV_READABLE, UV_WRITABLE)
    };
    struct Transfer {
        std::function<void(CURLcode)> done;
        std::uint64_t serial = 0;
        bool in_multi = true;
    };

    static int on_socket(CURL* easy, curl_socket_t s, int what, void* userp, void* socketp);
    static int on_timer(CURLM* multi, long timeout_ms, void* userp);
    static void on_poll(uv_poll_t* h, int status, int revents);
    static curl_socket_t on_open_socket(void* clientp, curlsocktype purpose, curl_sockaddr* address);
    static int on_close_socket(void* clientp, curl_socket_t s);
    // Tells curl about activity on `s` (or its timeout), then calls back the transfers it finished.
    void act(curl_socket_t s, int flags);
    void finish_done();

    uv_loop_t* loop_;
    const CurlApi& curl_;
    CURLM* multi_ = nullptr;
    Timer timer_;
    std::unordered_map<curl_socket_t, UvHandle<PollBox>> polls_;
    std::unordered_map<CURL*, Transfer> transfers_;
    std::vector<CURL*> idle_easies_;
    // Sockets this multi opened for curl's connections: it learns when they close, so their polls stay
    // between transfers on a kept connection instead of being made again for each request.
    std::unordered_set<curl_socket_t> own_sockets_;
    std::uint64_t next_serial_ = 1;
    bool closing_ = false;
};

} // namespace luaflow::loop
