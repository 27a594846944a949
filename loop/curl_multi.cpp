// libcurl's multi-socket interface on libuv, after curl docs/examples/multi-uv.c. curl tells us which
// sockets to watch (on_socket) and when to call it back (on_timer); libuv tells curl what happened
// (act). Finished transfers are collected after curl_multi_socket_action returns and only then called
// back, so a callback never runs inside curl and may add or remove transfers (STYLE 2.5 rule 5).
#include "loop/curl_multi.hpp"

#include "common/log.hpp"

#include <new>
#include <sys/socket.h>
#include <unistd.h>
#include <utility>
#include <vector>

namespace luaflow::loop {

CurlMulti::CurlMulti(uv_loop_t* loop, const CurlApi& api)
    : loop_(loop), curl_(api), multi_(api.multi_init()), timer_(loop) {
    if (!multi_) throw std::bad_alloc();
    curl_.multi_set<CURLMOPT_SOCKETFUNCTION>(multi_, &CurlMulti::on_socket);
    curl_.multi_set<CURLMOPT_SOCKETDATA>(multi_, this);
    curl_.multi_set<CURLMOPT_TIMERFUNCTION>(multi_, &CurlMulti::on_timer);
    curl_.multi_set<CURLMOPT_TIMERDATA>(multi_, this);
    // Many actions calling one API must not open a connection each; the rest wait for a free one.
    curl_.multi_set<CURLMOPT_MAX_HOST_CONNECTIONS>(multi_, kMaxHostConnections);
    // A fixed cache: curl's default (4 x the handles added right now) shrinks as transfers end, and
    // closes the connections that sequential requests would reuse.
    curl_.multi_set<CURLMOPT_MAXCONNECTS>(multi_, kMaxIdleConnections);
}

CurlMulti::~CurlMulti() {
    // From here on on_socket and on_timer change nothing: every poll is closed below anyway (on_close_socket
    // still closes the descriptors of the connections curl drops).
    closing_ = true;
    for (auto& [easy, t] : transfers_)
        if (t.in_multi) curl_.multi_remove_handle(multi_, easy);
    transfers_.clear();
    // Our polls go first, while curl's sockets are still open, so epoll forgets them cleanly; then
    // curl closes its cached connections.
    polls_.clear();
    timer_.stop();
    curl_.multi_cleanup(multi_);
    for (CURL* easy : idle_easies_)
        curl_.easy_cleanup(easy);
}

CURL* CurlMulti::acquire() {
    if (idle_easies_.empty()) return curl_.easy_init();
    CURL* easy = idle_easies_.back();
    idle_easies_.pop_back();
    return easy;
}

void CurlMulti::release(CURL* easy) {
    if (!easy) return;
    remove(easy);
    if (idle_easies_.size() >= kMaxIdleEasies) {
        curl_.easy_cleanup(easy);
        return;
    }
    // A reset keeps the handle's buffers; a new handle costs an allocation of several KiB, and its
    // cleanup as much again, per request.
    curl_.easy_reset(easy);
    idle_easies_.push_back(easy);
}

CURLMcode CurlMulti::add(CURL* easy, std::function<void(CURLcode)> done) {
    if (transfers_.count(easy)) return CURLM_ADDED_ALREADY;
    curl_.easy_set<CURLOPT_OPENSOCKETFUNCTION>(easy, &CurlMulti::on_open_socket);
    curl_.easy_set<CURLOPT_OPENSOCKETDATA>(easy, this);
    curl_.easy_set<CURLOPT_CLOSESOCKETFUNCTION>(easy, &CurlMulti::on_close_socket);
    curl_.easy_set<CURLOPT_CLOSESOCKETDATA>(easy, this);
    // curl_multi_add_handle only arms the timer (on_timer with 0): the transfer starts in a later
    // callback, so `done` cannot run before add() returns.
    CURLMcode rc = curl_.multi_add_handle(multi_, easy);
    if (rc != CURLM_OK) return rc;
    transfers_.emplace(easy, Transfer{std::move(done), next_serial_++, true});
    return CURLM_OK;
}

void CurlMulti::remove(CURL* easy) {
    auto it = transfers_.find(easy);
    if (it == transfers_.end()) return;
    bool in_multi = it->second.in_multi;
    transfers_.erase(it);
    if (in_multi) curl_.multi_remove_handle(multi_, easy);
}

int CurlMulti::on_socket(CURL*, curl_socket_t s, int what, void* userp, void*) {
    auto* self = static_cast<CurlMulti*>(userp);
    if (self->closing_) return 0;
    if (what == CURL_POLL_REMOVE) {
        auto it = self->polls_.find(s);
        if (it == self->polls_.end()) return 0;
        if (self->own_sockets_.count(s)) {
            // A kept connection between transfers: on_close_socket tells when it really goes.
            it->second->events = 0;
            uv_poll_stop(&it->second->uv);
        } else {
            // A socket we did not open (the resolver's) may be closed right after this returns: the
            // poll goes now (uv_close stops it at once).
            self->polls_.erase(it);
        }
        return 0;
    }
    auto it = self->polls_.find(s);
    if (it == self->polls_.end()) {
        auto* box = new PollBox();
        box->owner = self;
        box->fd = s;
        if (int rc = uv_poll_init_socket(self->loop_, &box->uv, s); rc != 0) {
            delete box; // never initialised: libuv does not know it
            log::error("curl: cannot watch socket %d: %s", static_cast<int>(s), uv_strerror(rc));
            return -1; // curl fails the transfers on this socket
        }
        it = self->polls_.emplace(s, UvHandle<PollBox>(box)).first;
    }
    int events = 0;
    if (what & CURL_POLL_IN) events |= UV_READABLE;
    if (what & CURL_POLL_OUT) events |= UV_WRITABLE;
    it->second->events = events;
    int rc = uv_poll_start(&it->second->uv, events, &CurlMulti::on_poll);
    if (rc != 0) {
        log::error("curl: cannot poll socket %d: %s", static_cast<int>(s), uv_strerror(rc));
        self->polls_.erase(s);
        return -1;
    }
    return 0;
}

void CurlMulti::on_poll(uv_poll_t* h, int status, int revents) {
    PollBox* b = box_of<PollBox>(h);
    if (!b) return;
    int flags = 0;
    if (revents & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (revents & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    if (status < 0) {
        // libuv reports EPOLLERR alone (UV_EBADF) and stops the poll, even when a peer's reset follows
        // data still to be read (a server closing after its answer). curl reads or writes and finds
        // out itself, as it would after poll(); CURL_CSELECT_ERR would drop what was read.
        if (b->events & UV_READABLE) flags |= CURL_CSELECT_IN;
        if (b->events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    }
    // May close this poll (CURL_POLL_REMOVE); the box itself is freed only in the close callback,
    // after this callback, so `closing` can still be read.
    b->owner->act(b->fd, flags);
    if (status < 0 && !b->closing && b->events) {
        if (int rc = uv_poll_start(&b->uv, b->events, &CurlMulti::on_poll); rc != 0)
            log::error("curl: cannot poll socket %d again: %s", static_cast<int>(b->fd), uv_strerror(rc));
    }
}

curl_socket_t CurlMulti::on_open_socket(void* clientp, curlsocktype, curl_sockaddr* a) {
    auto* self = static_cast<CurlMulti*>(clientp);
    curl_socket_t s = ::socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    if (s != CURL_SOCKET_BAD) self->own_sockets_.insert(s);
    return s;
}

int CurlMulti::on_close_socket(void* clientp, curl_socket_t s) {
    auto* self = static_cast<CurlMulti*>(clientp);
    self->own_sockets_.erase(s);
    // The poll first, while the descriptor is still open (uv_close takes it out of epoll at once).
    self->polls_.erase(s);
    return ::close(s);
}

int CurlMulti::on_timer(CURLM*, long timeout_ms, void* userp) {
    auto* self = static_cast<CurlMulti*>(userp);
    if (self->closing_) return 0;
    // Never curl_multi_socket_action from here (curl is running): a 0 ms timer calls it next turn.
    if (timeout_ms < 0)
        self->timer_.stop();
    else
        self->timer_.start(static_cast<std::uint64_t>(timeout_ms),
                           [self] { self->act(CURL_SOCKET_TIMEOUT, 0); });
    return 0;
}

void CurlMulti::act(curl_socket_t s, int flags) {
    int running = 0;
    CURLMcode rc = curl_.multi_socket_action(multi_, s, flags, &running);
    if (rc != CURLM_OK) log::error("curl_multi_socket_action: %s", curl_.multi_strerror(rc));
    finish_done();
}

void CurlMulti::finish_done() {
    struct Finished {
        CURL* easy;
        std::uint64_t serial;
        CURLcode code;
    };
    std::vector<Finished> finished;
    int left = 0;
    while (CURLMsg* m = curl_.multi_info_read(multi_, &left)) {
        if (m->msg != CURLMSG_DONE) continue;
        // The message is invalid once its handle is removed: copy what we need first.
        CURL* easy = m->easy_handle;
        CURLcode code = m->data.result;
        auto it = transfers_.find(easy);
        if (it == transfers_.end()) continue;
        // Out of the multi now, so that the callback may free or reuse the handle; the connection
        // goes back to the multi's cache.
        curl_.multi_remove_handle(multi_, easy);
        it->second.in_multi = false;
        finished.push_back({easy, it->second.serial, code});
    }
    for (const Finished& f : finished) {
        // An earlier callback may have removed this transfer, or freed the handle and added another
        // at the same address: the serial tells.
        auto it = transfers_.find(f.easy);
        if (it == transfers_.end() || it->second.serial != f.serial) continue;
        std::function<void(CURLcode)> done = std::move(it->second.done);
        transfers_.erase(it);
        done(f.code);
    }
}

} // namespace luaflow::loop
