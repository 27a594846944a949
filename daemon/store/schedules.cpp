#include "daemon/store/schedules.hpp"

namespace luaflow::store {

std::optional<ScheduleRow> find_schedule(Db& db, const std::string& workflow, const std::string& rule) {
    static constexpr const char* kSql =
        "SELECT dtstart, handled FROM schedules WHERE workflow = :workflow AND rule = :rule";
    Stmt::Use q(db.stmt(kSql));
    q.bind(":workflow", workflow).bind(":rule", rule);
    if (!q.step()) return std::nullopt;
    return ScheduleRow{q.int64(0), q.int64(1)};
}

void insert_schedule(WriteTx& tx, const std::string& workflow, const std::string& rule,
                     const ScheduleRow& row) {
    static constexpr const char* kSql = "INSERT OR IGNORE INTO schedules(workflow, rule, dtstart, handled) "
                                        "VALUES (:workflow, :rule, :dtstart, :handled)";
    Db& db = tx.db();
    Stmt::Use q(db.stmt(kSql));
    q.bind(":workflow", workflow).bind(":rule", rule).bind(":dtstart", row.dtstart);
    q.bind(":handled", row.handled).run();
}

void mark_handled(WriteTx& tx, const std::string& workflow, const std::string& rule, std::int64_t handled) {
    static constexpr const char* kSql = "UPDATE schedules SET handled = MAX(handled, :handled) "
                                        "WHERE workflow = :workflow AND rule = :rule";
    Db& db = tx.db();
    Stmt::Use q(db.stmt(kSql));
    q.bind(":workflow", workflow).bind(":rule", rule).bind(":handled", handled).run();
}

std::int64_t skipped_count(Db& db, const std::string& workflow) {
    static constexpr const char* kSql = "SELECT skipped FROM workflow_settings WHERE workflow = :workflow";
    Stmt::Use q(db.stmt(kSql));
    q.bind(":workflow", workflow);
    return q.step() ? q.int64(0) : 0;
}

void add_skipped(WriteTx& tx, const std::string& workflow, std::int64_t n) {
    static constexpr const char* kSql =
        "INSERT INTO workflow_settings(workflow, skipped) VALUES (:workflow, :n) "
        "ON CONFLICT(workflow) DO UPDATE SET skipped = skipped + excluded.skipped";
    Db& db = tx.db();
    Stmt::Use q(db.stmt(kSql));
    q.bind(":workflow", workflow).bind(":n", n).run();
}

} // namespace luaflow::store
