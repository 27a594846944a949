#include "daemon/store/retention.hpp"

namespace luaflow::store {

std::vector<std::string> prune_executions(WriteTx& tx, UnixMillis cutoff, int keep_per_workflow, int batch) {
    static constexpr const char* kFind =
        "SELECT e.id FROM executions e WHERE e.status NOT IN ('queued', 'running') AND e.finished_at < "
        ":cutoff "
        "AND (SELECT count(*) FROM executions n WHERE n.workflow = e.workflow AND n.seq > e.seq "
        "AND n.status NOT IN ('queued', 'running')) >= :keep "
        "ORDER BY e.seq LIMIT :batch";
    static constexpr const char* kDelete = "DELETE FROM executions WHERE id = :id";
    Db& db = tx.db();
    std::vector<std::string> ids;
    {
        Stmt::Use q(db.stmt(kFind));
        q.bind(":cutoff", cutoff).bind(":keep", keep_per_workflow).bind(":batch", batch);
        while (q.step())
            ids.push_back(q.text(0));
    }
    if (ids.empty()) return ids;
    for (const std::string& id : ids) {
        // Actions and logs go by ON DELETE CASCADE.
        Stmt::Use q(db.stmt(kDelete));
        q.bind(":id", id).run();
    }
    return ids;
}

} // namespace luaflow::store
