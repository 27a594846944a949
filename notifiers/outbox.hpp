#pragma once
// The notification outbox (SPEC 8). A state change that a rule listens for writes one row per notifier
// in its own transaction (raise, notify); once that commits, the sender takes the due rows and delivers
// each through its notifier (delivery.hpp), then writes the outcome: sent, or a failed attempt retried
// with exponential backoff (1 s doubling, at most 1 h apart) until 24 h after the row was written, when
// it is failed for good. The store drives it, so rows left pending by a stop or a crash go out after the
// next start. Delivery is at least once: a crash between a receiver's answer and its record sends the
// message again, with the same id (Message-ID, X-Luaflow-Notification-Id), for the receiver to drop.
#include "common/event.hpp"
#include "common/result.hpp"
#include "daemon/config/config.hpp"
#include "daemon/store/db.hpp"
#include "loop/curl_multi.hpp"
#include "loop/uv_handle.hpp"
#include "notifiers/delivery.hpp"
#include "notifiers/message.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace luaflow::store {
struct PendingNotification;
}

namespace luaflow::notifiers {

// Attempts in flight to one notifier at once: a receiver that never answers holds these, not the rest.
inline constexpr int kMaxInFlightPerNotifier = 4;
inline constexpr Millis kFirstRetryDelay = 1000;
inline constexpr Millis kMaxRetryDelay = 3'600'000;
inline constexpr Millis kGiveUpAfter = 86'400'000;

// The wait before attempt `attempts + 1`, after `attempts` failed ones.
Millis retry_delay(int attempts);

// What /metrics shows of a notifier since the daemon started (pending: now).
struct NotifierCounts {
    std::int64_t sent = 0, failed = 0, retried = 0, pending = 0;
};

class Outbox {
  public:
    // `config` is the daemon's, whose contents a reload replaces (apply_config follows).
    Outbox(uv_loop_t* loop, store::Db& db, const config::Config& config);
    ~Outbox();
    Outbox(const Outbox&) = delete;
    Outbox& operator=(const Outbox&) = delete;

    // The notifiers the rules name for `event`: the config's, then the workflow's, each once.
    std::vector<std::string> targets(Event event, const nlohmann::json& workflow_rules) const;
    // A row for each of targets(), written in `tx` (m.id is made for each).
    void raise(store::WriteTx& tx, Event event, const nlohmann::json& workflow_rules, const Message& m);
    // notify() from Lua: a row to `notifier`; an error naming it when the config has none of that name.
    Result<void> notify(store::WriteTx& tx, const std::string& notifier, Message m);

    // luaflowctl test: rows are written as `recorded` and never sent.
    void record_only() { record_only_ = true; }
    // Sends what the store holds and what is written from now on (the daemon, once recovered).
    void start();
    // Cancels the transfers in flight (their rows stay pending for the next start).
    void stop();
    // After a reload: the notifiers' password files are read again; the pending rows of a notifier the
    // config no longer has fail for good, naming it.
    void apply_config();

    // luaflowctl notify test: a test message through `notifier` now, outside the outbox; `done` hears
    // the outcome (the transport's own words on failure) from a later callback, or at once when it
    // cannot start (no such notifier, no libcurl, an unreadable password_file).
    void send_test(const std::string& notifier, std::function<void(Result<void>)> done);

    bool has_notifier(const std::string& name) const { return config_.notifiers.count(name) > 0; }
    // "no notifier 'x' in the config (it has a, b)"
    std::string no_such_notifier(const std::string& name) const;

    const std::map<std::string, NotifierCounts>& counts() const { return counts_; }
    const std::string& host() const { return host_; }

  private:
    void wake();
    void scan();
    void attempt(const store::PendingNotification& row, const config::NotifierConfig& to);
    void record(std::int64_t id, const std::string& notifier, int attempts, std::int64_t created_at,
                const Result<void>& outcome);
    // The timer for the earliest row due after `now` (the scan's).
    void arm_timer(std::int64_t now);
    loop::CurlMulti* curl(std::string& why);
    void read_passwords();

    uv_loop_t* loop_;
    store::Db& db_;
    const config::Config& config_;
    std::string host_;
    bool record_only_ = false;
    bool started_ = false;
    bool scan_queued_ = false;
    loop::Timer timer_;
    // Made by the first delivery: a daemon that sends nothing never loads libcurl.
    std::unique_ptr<loop::CurlMulti> curl_;
    struct InFlight {
        std::string notifier;
        std::unique_ptr<Delivery> delivery;
    };
    std::map<std::int64_t, InFlight> in_flight_; // by row id
    std::map<std::string, int> in_flight_per_notifier_;
    std::map<std::uint64_t, std::unique_ptr<Delivery>> tests_;
    std::uint64_t next_test_ = 0;
    std::map<std::string, NotifierCounts> counts_;
    struct Password {
        std::string text, error; // error: why password_file could not be read
    };
    std::map<std::string, Password> passwords_; // of the e-mail notifiers with a password_file
};

} // namespace luaflow::notifiers
