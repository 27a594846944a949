#include "daemon/store/notifications.hpp"

#include "daemon/store/executions.hpp"

namespace luaflow::store {

using nlohmann::json;

void add_notification(WriteTx& tx, const NewNotification& n) {
    static constexpr const char* kSql =
        "INSERT INTO notifications(uid, notifier, event, workflow, execution_id, message, status, "
        "created_at, "
        "next_at) VALUES (:uid, :notifier, :event, :workflow, :execution, :message, :status, :at, :at)";
    Stmt::Use q(tx.db().stmt(kSql));
    q.bind(":uid", n.uid).bind(":notifier", n.notifier).bind(":event", n.event).bind(":workflow", n.workflow);
    q.bind(":execution", n.execution).bind_json(":message", n.message);
    q.bind(":status", n.recorded_only ? "recorded" : "pending").bind(":at", n.created_at).run();
}

std::vector<PendingNotification> due_notifications(Db& db, const std::string& notifier, std::int64_t now,
                                                   int limit) {
    static constexpr const char* kSql =
        "SELECT id, uid, message, attempts, created_at FROM notifications WHERE status = 'pending' AND "
        "notifier = :notifier AND next_at <= :now ORDER BY next_at, id LIMIT :limit";
    Stmt::Use q(db.stmt(kSql));
    q.bind(":notifier", notifier).bind(":now", now).bind(":limit", limit);
    std::vector<PendingNotification> out;
    while (q.step())
        out.push_back({q.int64(0), q.text(1), notifier, q.text(2), static_cast<int>(q.int64(3)), q.int64(4)});
    return out;
}

std::optional<std::int64_t> next_notification_due(Db& db, const std::string& notifier, std::int64_t now) {
    // A seek in notifications_due (notifier, next_at), however many rows wait for a dead receiver.
    static constexpr const char* kSql = "SELECT min(next_at) FROM notifications WHERE status = 'pending' AND "
                                        "notifier = :notifier AND next_at > :now";
    Stmt::Use q(db.stmt(kSql));
    q.bind(":notifier", notifier).bind(":now", now);
    if (!q.step()) return std::nullopt;
    return q.opt_int64(0);
}

std::map<std::string, std::int64_t> pending_notifications(Db& db) {
    static constexpr const char* kSql =
        "SELECT notifier, count(*) FROM notifications WHERE status = 'pending' GROUP BY notifier";
    Stmt::Use q(db.stmt(kSql));
    std::map<std::string, std::int64_t> out;
    while (q.step())
        out[q.text(0)] = q.int64(1);
    return out;
}

void notification_sent(WriteTx& tx, std::int64_t id, int attempts, std::int64_t at) {
    static constexpr const char* kSql = "UPDATE notifications SET status = 'sent', attempts = :attempts, "
                                        "sent_at = :at, error = NULL WHERE id = :id";
    Stmt::Use q(tx.db().stmt(kSql));
    q.bind(":id", id).bind(":attempts", attempts).bind(":at", at).run();
}

void notification_failed(WriteTx& tx, std::int64_t id, int attempts, const std::string& error,
                         std::optional<std::int64_t> next_at) {
    static constexpr const char* kSql =
        "UPDATE notifications SET status = :status, attempts = :attempts, error = :error, "
        "next_at = coalesce(:next_at, next_at) WHERE id = :id";
    Stmt::Use q(tx.db().stmt(kSql));
    q.bind(":id", id).bind(":status", next_at ? "pending" : "failed").bind(":attempts", attempts);
    q.bind(":error", error).bind(":next_at", next_at).run();
}

std::int64_t fail_pending_notifications(WriteTx& tx, const std::string& notifier, const std::string& error) {
    static constexpr const char* kSql = "UPDATE notifications SET status = 'failed', error = :error "
                                        "WHERE status = 'pending' AND notifier = :notifier";
    Stmt::Use q(tx.db().stmt(kSql));
    q.bind(":notifier", notifier).bind(":error", error).run();
    return sqlite3_changes(tx.db().handle());
}

json execution_notifications(Db& db, const std::string& execution) {
    static constexpr const char* kSql =
        "SELECT uid, notifier, event, status, attempts, error, sent_at FROM notifications "
        "WHERE execution_id = :execution ORDER BY id";
    Stmt::Use q(db.stmt(kSql));
    q.bind(":execution", execution);
    json out = json::array();
    while (q.step())
        out.push_back({{"id", q.text(0)},
                       {"notifier", q.text(1)},
                       {"event", q.text(2)},
                       {"status", q.text(3)},
                       {"attempts", q.int64(4)},
                       {"error", q.is_null(5) ? json() : json(q.text(5))},
                       {"sent_at", q.is_null(6) ? json() : time_or_null(q.int64(6))}});
    return out;
}

void prune_notifications(WriteTx& tx, std::int64_t before) {
    static constexpr const char* kSql =
        "DELETE FROM notifications WHERE status != 'pending' AND created_at < :before";
    Stmt::Use q(tx.db().stmt(kSql));
    q.bind(":before", before).run();
}

} // namespace luaflow::store
