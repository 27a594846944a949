#include "notifiers/outbox.hpp"

#include "common/log.hpp"
#include "common/time_format.hpp"
#include "daemon/store/notifications.hpp"
#include "loop/curl_api.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <set>

namespace luaflow::notifiers {

using nlohmann::json;

namespace {

// A message's stable id: 128 random bits, so that ids from different daemons and state directories
// never meet at a receiver.
std::string new_message_id() {
    static std::mt19937_64 rng{std::random_device{}()};
    char buf[33];
    std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(rng()),
                  static_cast<unsigned long long>(rng()));
    return buf;
}

std::string host_name() {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0) return "localhost";
    return buf;
}

void append_names(std::vector<std::string>& out, const json& rules, const char* event) {
    auto it = rules.find(event);
    if (it == rules.end() || !it->is_array()) return;
    for (const json& n : *it)
        if (n.is_string() && std::find(out.begin(), out.end(), n.get<std::string>()) == out.end())
            out.push_back(n.get<std::string>());
}

} // namespace

Millis retry_delay(int attempts) {
    Millis d = kFirstRetryDelay;
    for (int i = 1; i < attempts && d < kMaxRetryDelay; ++i)
        d *= 2;
    return std::min(d, kMaxRetryDelay);
}

Outbox::Outbox(uv_loop_t* loop, store::Db& db, const config::Config& config)
    : loop_(loop), db_(db), config_(config), host_(host_name()), timer_(loop) {
    read_passwords();
}

Outbox::~Outbox() {
    stop();
}

std::vector<std::string> Outbox::targets(Event event, const json& workflow_rules) const {
    std::vector<std::string> out;
    const char* name = to_string(event);
    append_names(out, config_.notify, name);
    append_names(out, workflow_rules, name);
    return out;
}

void Outbox::raise(store::WriteTx& tx, Event event, const json& workflow_rules, const Message& m) {
    for (const std::string& notifier : targets(event, workflow_rules)) {
        if (!record_only_ && !config_.notifiers.count(notifier)) {
            // The workflow was loaded under a config that had it: its rules are checked at load.
            log::warn_about({m.workflow, m.execution, {}},
                            "workflow %s: %s notification not sent: no notifier '%s' in the config",
                            m.workflow.c_str(), m.event.c_str(), notifier.c_str());
            continue;
        }
        Message one = m;
        (void)notify(tx, notifier, std::move(one));
    }
}

Result<void> Outbox::notify(store::WriteTx& tx, const std::string& notifier, Message m) {
    // luaflowctl test reads no config (yet): it records what the rules name.
    if (!record_only_ && !has_notifier(notifier))
        return make_error(ErrorCode::invalid, no_such_notifier(notifier));
    m.id = new_message_id();
    if (m.host.empty()) m.host = host_;
    store::NewNotification row;
    row.uid = m.id;
    row.notifier = notifier;
    row.event = m.event;
    row.workflow = m.workflow;
    if (!m.execution.empty()) row.execution = m.execution;
    row.created_at = m.time_ms ? m.time_ms : now_unix_ms();
    row.recorded_only = record_only_;
    row.message = to_json(m);
    store::add_notification(tx, row);
    if (!record_only_) {
        ++counts_[notifier].pending;
        wake();
    }
    return {};
}

std::string Outbox::no_such_notifier(const std::string& name) const {
    std::string known;
    for (const auto& [n, c] : config_.notifiers)
        known += (known.empty() ? "" : ", ") + n;
    return "no notifier '" + name + "' in the config (" +
           (known.empty() ? "it has none" : "it has " + known) + ")";
}

void Outbox::wake() {
    if (!started_ || scan_queued_) return;
    scan_queued_ = true;
    db_.after_commit([this] {
        scan_queued_ = false;
        scan();
    });
}

void Outbox::start() {
    if (record_only_ || started_) return;
    started_ = true;
    apply_config(); // fails what no notifier will send; counts what is pending
    for (const auto& [notifier, n] : store::pending_notifications(db_))
        counts_[notifier].pending = n;
    scan();
}

void Outbox::stop() {
    started_ = false;
    timer_.stop();
    in_flight_.clear();
    in_flight_per_notifier_.clear();
    tests_.clear();
    curl_.reset();
}

void Outbox::apply_config() {
    read_passwords();
    if (!started_) return;
    for (const auto& [notifier, n] : store::pending_notifications(db_)) {
        if (config_.notifiers.count(notifier)) continue;
        std::int64_t failed = store::fail_pending_notifications(
            db_.write(), notifier, "no notifier '" + notifier + "' in the config any more");
        log::warn("notifications: %lld pending for notifier '%s' failed: it is no longer in the config",
                  static_cast<long long>(failed), notifier.c_str());
        counts_[notifier].failed += failed;
        counts_[notifier].pending = 0;
    }
    wake();
}

void Outbox::read_passwords() {
    passwords_.clear();
    for (const auto& [name, n] : config_.notifiers) {
        if (n.kind != config::NotifierConfig::Kind::email || n.password_file.empty()) continue;
        Password& p = passwords_[name];
        std::ifstream in(n.password_file, std::ios::binary);
        if (!in) {
            p.error = "cannot read password_file " + n.password_file + ": " + std::strerror(errno);
            log::error("notifier %s: %s", name.c_str(), p.error.c_str());
            continue;
        }
        std::getline(in, p.text);
        if (!p.text.empty() && p.text.back() == '\r') p.text.pop_back();
    }
}

loop::CurlMulti* Outbox::curl(std::string& why) {
    if (!curl_) {
        auto api = loop::curl_api();
        if (!api) {
            why = api.error().message;
            return nullptr;
        }
        curl_ = std::make_unique<loop::CurlMulti>(loop_, **api);
    }
    return curl_.get();
}

void Outbox::scan() {
    if (!started_) return;
    std::int64_t now = now_unix_ms();
    for (const auto& [notifier, to] : config_.notifiers) {
        int busy = in_flight_per_notifier_[notifier];
        if (busy >= kMaxInFlightPerNotifier) continue;
        // The due rows, with room for the ones already in flight, which the query returns too.
        for (const auto& row : store::due_notifications(db_, notifier, now, kMaxInFlightPerNotifier + busy)) {
            if (in_flight_per_notifier_[notifier] >= kMaxInFlightPerNotifier) break;
            if (in_flight_.count(row.id)) continue;
            attempt(row, to);
        }
    }
    arm_timer(now);
}

// `now` must be the scan's own: a row not yet due then is one due after it. Read again, a millisecond
// later, it could be neither (libuv's timer fires up to 1 ms before the wall clock's due time), and the
// row waited for ever (CI's ASan runs: a dead receiver's second attempt never came).
void Outbox::arm_timer(std::int64_t now) {
    if (!started_) return;
    std::optional<std::int64_t> next;
    for (const auto& [notifier, to] : config_.notifiers)
        if (auto at = store::next_notification_due(db_, notifier, now); at && (!next || *at < *next))
            next = at;
    if (!next) {
        timer_.stop();
        return;
    }
    timer_.start(static_cast<std::uint64_t>(std::max<std::int64_t>(0, *next - now_unix_ms())),
                 [this] { scan(); });
}

void Outbox::attempt(const store::PendingNotification& row, const config::NotifierConfig& to) {
    int attempts = row.attempts + 1;
    Message m = message_from_json(json::parse(row.message, nullptr, false));
    m.id = row.uid;
    std::string why;
    std::string secret;
    if (auto p = passwords_.find(row.notifier); p != passwords_.end()) {
        why = p->second.error;
        secret = p->second.text;
    }
    loop::CurlMulti* multi = why.empty() ? curl(why) : nullptr;
    if (multi) {
        std::int64_t id = row.id, created = row.created_at;
        std::string notifier = row.notifier;
        auto started =
            Delivery::start(*multi, to, m, secret, [this, id, notifier, attempts, created](Result<void> r) {
                // Destroys the delivery: allowed from its callback (Delivery::finish holds nothing after).
                in_flight_.erase(id);
                --in_flight_per_notifier_[notifier];
                record(id, notifier, attempts, created, r);
                wake();
            });
        if (started) {
            in_flight_[row.id] = {row.notifier, std::move(started.value())};
            ++in_flight_per_notifier_[row.notifier];
            return;
        }
        why = started.error().message;
    }
    record(row.id, row.notifier, attempts, row.created_at, make_error(ErrorCode::unavailable, why));
}

void Outbox::record(std::int64_t id, const std::string& notifier, int attempts, std::int64_t created_at,
                    const Result<void>& outcome) {
    NotifierCounts& c = counts_[notifier];
    std::int64_t now = now_unix_ms();
    if (outcome) {
        store::notification_sent(db_.write(), id, attempts, now);
        ++c.sent;
        --c.pending;
        return;
    }
    const std::string& why = outcome.error().message;
    std::int64_t next = now + retry_delay(attempts);
    if (next - created_at > kGiveUpAfter) {
        std::string error = "gave up after " + std::to_string(attempts) + " attempt(s) over " +
                            readable_duration(now - created_at) + "; the last: " + why;
        store::notification_failed(db_.write(), id, attempts, error, std::nullopt);
        log::error("notification to %s failed for good: %s", notifier.c_str(), error.c_str());
        ++c.failed;
        --c.pending;
        return;
    }
    store::notification_failed(db_.write(), id, attempts, why, next);
    log::warn("notification to %s: attempt %d failed: %s; next in %s", notifier.c_str(), attempts,
              why.c_str(), readable_duration(next - now).c_str());
    ++c.retried;
}

void Outbox::send_test(const std::string& notifier, std::function<void(Result<void>)> done) {
    auto to = config_.notifiers.find(notifier);
    std::string why;
    if (to == config_.notifiers.end()) why = no_such_notifier(notifier);
    Message m;
    m.id = new_message_id();
    m.event = "notify";
    m.workflow = "luaflowctl";
    m.time_ms = now_unix_ms();
    m.host = host_;
    m.subject = "[luaflow] test notification from " + host_;
    m.body = "This is a test of notifier '" + notifier + "', sent by luaflowctl notify test.";
    std::string secret;
    if (auto p = passwords_.find(notifier); why.empty() && p != passwords_.end()) {
        why = p->second.error;
        secret = p->second.text;
    }
    loop::CurlMulti* multi = why.empty() ? curl(why) : nullptr;
    if (multi) {
        std::uint64_t key = ++next_test_;
        auto started = Delivery::start(*multi, to->second, m, secret, [this, key, done](Result<void> r) {
            tests_.erase(key);
            done(std::move(r));
        });
        if (started) {
            tests_[key] = std::move(started.value());
            return;
        }
        why = started.error().message;
    }
    done(make_error(ErrorCode::unavailable, why));
}

} // namespace luaflow::notifiers
