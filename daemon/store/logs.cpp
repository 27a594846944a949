#include "daemon/store/logs.hpp"

#include "daemon/store/executions.hpp"

namespace luaflow::store {

std::int64_t append_log(WriteTx& tx, const LogLine& l) {
    static constexpr const char* kSql = "INSERT INTO logs(execution_id, action, attempt, time, stream, line) "
                                        "VALUES (:execution, :action, :attempt, :time, :stream, :line)";
    Db& db = tx.db();
    Stmt::Use q(db.stmt(kSql));
    q.bind(":execution", l.execution).bind(":action", l.action);
    if (l.attempt)
        q.bind(":attempt", *l.attempt);
    else
        q.bind_null(":attempt");
    q.bind(":time", l.time).bind(":stream", l.stream).bind(":line", l.line).run();
    return sqlite3_last_insert_rowid(db.handle());
}

std::vector<LogLine> read_logs(Db& db, const std::string& execution, const std::optional<std::string>& action,
                               std::int64_t after_id, int limit) {
    static constexpr const char* kSql = "SELECT id, action, attempt, time, stream, line FROM logs WHERE "
                                        "execution_id = :execution AND id > :after "
                                        "AND (:action IS NULL OR action = :action) ORDER BY id LIMIT :limit";
    Stmt::Use q(db.stmt(kSql));
    q.bind(":execution", execution).bind(":after", after_id).bind(":action", action).bind(":limit", limit);
    std::vector<LogLine> out;
    while (q.step()) {
        LogLine l;
        l.id = q.int64(0);
        l.execution = execution;
        l.action = q.opt_text(1);
        if (auto a = q.opt_int64(2)) l.attempt = static_cast<int>(*a);
        l.time = q.int64(3);
        l.stream = q.text(4);
        l.line = q.text(5);
        out.push_back(std::move(l));
    }
    return out;
}

const char* const kLogPageSql = "SELECT id, action, attempt, time, stream, line FROM logs "
                                "WHERE execution_id = :execution AND id > :after ORDER BY id LIMIT :limit";

LogPage read_log_page(Db& db, const std::string& execution, const std::optional<std::string>& action,
                      std::int64_t after_id, int max_rows, std::size_t max_bytes) {
    Stmt::Use q(db.stmt(kLogPageSql));
    q.bind(":execution", execution).bind(":after", after_id).bind(":limit", max_rows);
    LogPage page;
    page.last_id = after_id;
    int rows = 0;
    std::size_t bytes = 0;
    while (q.step()) {
        ++rows;
        page.last_id = q.int64(0);
        std::optional<std::string> row_action = q.opt_text(1);
        if (!action || row_action == action) {
            LogLine l;
            l.id = page.last_id;
            l.execution = execution;
            l.action = std::move(row_action);
            if (auto a = q.opt_int64(2)) l.attempt = static_cast<int>(*a);
            l.time = q.int64(3);
            l.stream = q.text(4);
            l.line = q.text(5);
            bytes += l.line.size();
            page.lines.push_back(std::move(l));
        }
        if (bytes >= max_bytes) {
            page.full = true;
            return page;
        }
    }
    page.full = rows >= max_rows;
    return page;
}

nlohmann::json log_json(const LogLine& l) {
    return {{"time", format_rfc3339(l.time)},
            {"action", l.action ? nlohmann::json(*l.action) : nlohmann::json()},
            {"attempt", l.attempt ? nlohmann::json(*l.attempt) : nlohmann::json()},
            {"stream", l.stream},
            {"line", l.line}};
}

} // namespace luaflow::store
