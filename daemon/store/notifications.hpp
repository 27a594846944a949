#pragma once
// The notification outbox's table (SPEC 8): rows written with the state change they report, read by
// the sender (notifiers/outbox) and by inspect.
#include "daemon/store/db.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace luaflow::store {

struct NewNotification {
    std::string uid, notifier, event, workflow;
    std::optional<std::string> execution;
    nlohmann::json message;     // notifiers::Message as JSON
    bool recorded_only = false; // luaflowctl test: kept as `recorded`, never sent
    std::int64_t created_at = 0;
};

struct PendingNotification {
    std::int64_t id = 0;
    std::string uid, notifier;
    std::string message; // JSON text
    int attempts = 0;
    std::int64_t created_at = 0;
};

void add_notification(WriteTx& tx, const NewNotification& n);
// Pending rows of `notifier` due at `now`, the longest due first, at most `limit`.
std::vector<PendingNotification> due_notifications(Db& db, const std::string& notifier, std::int64_t now,
                                                   int limit);
// The earliest next_at of a pending row of `notifier` after `now`, if any.
std::optional<std::int64_t> next_notification_due(Db& db, const std::string& notifier, std::int64_t now);
// How many rows are pending, by notifier (those of notifiers no longer configured included).
std::map<std::string, std::int64_t> pending_notifications(Db& db);
void notification_sent(WriteTx& tx, std::int64_t id, int attempts, std::int64_t at);
// A failed attempt: pending again at `next_at`, or `failed` for good without one.
void notification_failed(WriteTx& tx, std::int64_t id, int attempts, const std::string& error,
                         std::optional<std::int64_t> next_at);
// Every pending row of `notifier` failed for good with `error`; returns how many.
std::int64_t fail_pending_notifications(WriteTx& tx, const std::string& notifier, const std::string& error);
// [{"id","notifier","event","status","attempts","error","sent_at"}], oldest first (inspect).
nlohmann::json execution_notifications(Db& db, const std::string& execution);
// Drops the rows that are done with (sent, failed, recorded) and older than `before`.
void prune_notifications(WriteTx& tx, std::int64_t before);

} // namespace luaflow::store
