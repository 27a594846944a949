#include "daemon/control/log_stream.hpp"

#include "common/log.hpp"
#include "daemon/store/logs.hpp"
#include "loop/uv_handle.hpp"

#include <utility>
#include <vector>

namespace luaflow::control {

namespace {

// A page: at most this many rows looked at, and about this much line text. A page costs the loop about
// 1 ms (what another client may wait for) and goes out as one write.
constexpr int kPageRows = 500;
constexpr std::size_t kPageBytes = 64u << 10;
// Pages that match nothing (rows of other actions) looked at in one turn before the loop gets it back.
constexpr int kEmptyPagesPerTurn = 16;
// Pages read by every stream together in one loop turn. Each reader whose socket drained added its page to
// the same turn: forty readers filling their sockets held a status request behind them for 60 ms (with
// pages of 256 KiB; 0.45 s for the HTTP API's text). Past this the rest wait for a later turn, after the
// loop has polled for everyone else.
constexpr int kPagesPerTurn = 1;

// Whether a page may be read in this turn. A turn is one value of uv_now(), which the loop sets once a
// turn (and after the poll): a later turn within the same millisecond shares the budget, which only
// spreads the pages more.
bool take_page(uv_loop_t* loop) {
    static std::uint64_t turn = 0;
    static int taken = 0;
    if (std::uint64_t now = uv_now(loop); now != turn) {
        turn = now;
        taken = 0;
    }
    return taken++ < kPagesPerTurn;
}

class LogStream : public std::enable_shared_from_this<LogStream> {
  public:
    LogStream(Context& ctx, std::shared_ptr<Reply> reply, LogStreamRequest request)
        : ctx_(ctx), reply_(std::move(reply)), req_(std::move(request)), next_turn_(ctx.loop) {}

    void start() {
        std::weak_ptr<LogStream> weak = weak_from_this();
        if (req_.follow) {
            // The executor holds the stream while it is watched: between pages nothing else does.
            auto self = shared_from_this();
            watch_ = ctx_.executor.watch_logs(
                req_.execution, [self] { self->on_lines(); }, [self] { self->on_end(); });
            ended_ = watch_ == 0;
        }
        reply_->on_gone([weak] {
            if (auto s = weak.lock()) s->stop();
        });
        if (!req_.as_events) reply_->open_result_array();
        pump();
    }

  private:
    void on_lines() {
        if (std::exchange(idle_, false)) pump(); // else a page is on its way and the next one reads them
    }

    void on_end() {
        watch_ = 0; // the executor has dropped the watch
        ended_ = true;
        if (std::exchange(idle_, false)) pump();
    }

    void pump() {
        if (stopped_) return;
        if (!reply_->alive()) return stop();
        // Called from libuv callbacks: nothing may escape to the loop.
        try {
            send_pages();
        } catch (const std::exception& e) {
            log::error("logs of %s failed: %s", req_.execution.c_str(), e.what());
            stop();
            reply_->error(make_error(ErrorCode::internal, std::string("logs failed: ") + e.what()));
        }
    }

    void send_pages() {
        for (int page_no = 0; page_no < kEmptyPagesPerTurn; ++page_no) {
            if (!take_page(ctx_.loop)) {
                // In 1 ms, not 0: libuv (1.44) runs a timer started at 0 from a timer callback in the same
                // phase, with the same uv_now() and so no budget, for ever.
                keep_until_next_turn_ = shared_from_this();
                next_turn_.start(1, [this] { std::exchange(keep_until_next_turn_, nullptr)->pump(); });
                return;
            }
            store::LogPage page =
                store::read_log_page(ctx_.db, req_.execution, req_.action, after_, kPageRows, kPageBytes);
            after_ = page.last_id;
            std::vector<json> out;
            out.reserve(page.lines.size());
            for (const store::LogLine& l : page.lines) {
                if (req_.limit && sent_ == *req_.limit) {
                    send(out);
                    return finish(true);
                }
                out.push_back(store::log_json(l));
                ++sent_;
            }
            if (!out.empty()) {
                send(out);
                reply_->when_drained([self = shared_from_this()] { self->pump(); });
                return;
            }
            if (!page.full) { // caught up
                if (!req_.follow || ended_) return finish(false);
                idle_ = true;
                return;
            }
        }
        // Only rows of other actions so far: the rest on the next turn. The stream keeps itself until then.
        keep_until_next_turn_ = shared_from_this();
        next_turn_.start(0, [this] { std::exchange(keep_until_next_turn_, nullptr)->pump(); });
    }

    void send(const std::vector<json>& lines) {
        if (req_.as_events)
            reply_->events(lines);
        else
            reply_->add_result_elements(lines);
    }

    void finish(bool limited) {
        stop();
        if (req_.as_events)
            reply_->result({{"lines", sent_}, {"limited", limited}});
        else
            reply_->close_result_array();
    }

    void stop() {
        stopped_ = true;
        if (watch_ != 0) ctx_.executor.unwatch_logs(std::exchange(watch_, 0));
    }

    Context& ctx_;
    std::shared_ptr<Reply> reply_;
    LogStreamRequest req_;
    loop::Timer next_turn_;
    std::shared_ptr<LogStream> keep_until_next_turn_;
    std::int64_t after_ = 0; // the last row looked at
    std::uint64_t sent_ = 0;
    std::uint64_t watch_ = 0;
    bool ended_ = false;   // the execution has ended: caught up is the end
    bool idle_ = false;    // caught up, following: waits for lines
    bool stopped_ = false; // finished, or the client has gone
};

} // namespace

void stream_logs(Context& ctx, const std::shared_ptr<Reply>& reply, LogStreamRequest request) {
    std::make_shared<LogStream>(ctx, reply, std::move(request))->start();
}

} // namespace luaflow::control
