#include "daemon/store/events.hpp"

#include "daemon/store/executions.hpp"

namespace luaflow::store {

using nlohmann::json;

void record_event(WriteTx& tx, const NewEvent& e) {
    static constexpr const char* kSql =
        "INSERT INTO events(workflow, execution_id, event, time, count, message) "
        "VALUES (:workflow, :execution, :event, :time, :count, :message)";
    Db& db = tx.db();
    Stmt::Use q(db.stmt(kSql));
    q.bind(":workflow", e.workflow).bind(":execution", e.execution).bind(":event", to_string(e.event));
    q.bind(":time", e.time).bind(":count", e.count).bind(":message", e.message).run();
}

json execution_events(Db& db, const std::string& execution) {
    static constexpr const char* kSql =
        "SELECT event, time, count, message FROM events WHERE execution_id = :execution ORDER BY id";
    Stmt::Use q(db.stmt(kSql));
    q.bind(":execution", execution);
    json out = json::array();
    while (q.step())
        out.push_back({{"event", q.text(0)},
                       {"time", time_or_null(q.int64(1))},
                       {"count", q.int64(2)},
                       {"message", q.text(3)}});
    return out;
}

json workflow_events(Db& db, const std::string& workflow, int limit) {
    static constexpr const char* kSql = "SELECT event, time, count, message, execution_id FROM events "
                                        "WHERE workflow = :workflow ORDER BY id DESC LIMIT :limit";
    Stmt::Use q(db.stmt(kSql));
    q.bind(":workflow", workflow).bind(":limit", limit);
    json out = json::array();
    while (q.step())
        out.push_back({{"event", q.text(0)},
                       {"time", time_or_null(q.int64(1))},
                       {"count", q.int64(2)},
                       {"message", q.text(3)},
                       {"execution", q.is_null(4) ? json() : json(q.text(4))}});
    return out;
}

void prune_events(WriteTx& tx, std::int64_t before) {
    static constexpr const char* kSql = "DELETE FROM events WHERE execution_id IS NULL AND time < :before";
    Db& db = tx.db();
    Stmt::Use q(db.stmt(kSql));
    q.bind(":before", before).run();
}

} // namespace luaflow::store
