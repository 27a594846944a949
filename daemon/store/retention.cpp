#include "daemon/store/retention.hpp"

#include <limits>

namespace luaflow::store {

namespace {

constexpr int kWholePassScan = 2000;

// The next workflow id after `after` that has executions: a seek in executions_workflow.
std::optional<std::string> next_workflow(Db& db, const std::string& after) {
    Stmt::Use q(db.stmt("SELECT min(workflow) FROM executions WHERE workflow > :after"));
    q.bind(":after", after);
    if (!q.step() || q.is_null(0)) return std::nullopt;
    return q.text(0);
}

// The seq below which the workflow's executions may go: that of its keep-th newest finished one, or 0
// when it has fewer (nothing goes).
std::int64_t kept_from(Db& db, const std::string& workflow, int keep) {
    if (keep <= 0) return std::numeric_limits<std::int64_t>::max();
    Stmt::Use q(db.stmt("SELECT seq FROM executions WHERE workflow = :workflow AND status NOT IN "
                        "('queued', 'running') ORDER BY seq DESC LIMIT 1 OFFSET :offset"));
    q.bind(":workflow", workflow).bind(":offset", keep - 1);
    return q.step() ? q.int64(0) : 0;
}

} // namespace

std::vector<std::string> PrunePass::step(WriteTx& tx, int batch, int scan) {
    std::vector<std::string> ids;
    if (done_) return ids;
    Db& db = tx.db();
    if (!workflow_) {
        workflow_ = next_workflow(db, "");
        if (!workflow_) {
            done_ = true;
            return ids;
        }
    }
    if (!below_) {
        below_ = kept_from(db, *workflow_, keep_);
        cursor_ = std::numeric_limits<std::int64_t>::min();
    }
    int seen = 0;
    {
        Stmt::Use q(db.stmt("SELECT id, seq, status, finished_at FROM executions WHERE workflow = :workflow "
                            "AND seq > :cursor AND seq < :below ORDER BY seq LIMIT :scan"));
        q.bind(":workflow", *workflow_).bind(":cursor", cursor_).bind(":below", *below_).bind(":scan", scan);
        while (static_cast<int>(ids.size()) < batch && q.step()) {
            ++seen;
            cursor_ = q.int64(1);
            std::string status = q.text(2);
            if (status != "queued" && status != "running" && !q.is_null(3) && q.int64(3) < cutoff_)
                ids.push_back(q.text(0));
        }
    }
    // Fewer than asked for, and not stopped by the batch: this workflow is done with.
    if (seen < scan && static_cast<int>(ids.size()) < batch) {
        workflow_ = next_workflow(db, *workflow_);
        below_.reset();
        if (!workflow_) done_ = true;
    }
    for (const std::string& id : ids) {
        // Actions, logs and events go by ON DELETE CASCADE.
        Stmt::Use q(db.stmt("DELETE FROM executions WHERE id = :id"));
        q.bind(":id", id).run();
    }
    return ids;
}

std::vector<std::string> prune_executions(WriteTx& tx, UnixMillis cutoff, int keep_per_workflow, int batch) {
    PrunePass pass(cutoff, keep_per_workflow);
    std::vector<std::string> all;
    while (!pass.done() && static_cast<int>(all.size()) < batch)
        for (std::string& id : pass.step(tx, batch - static_cast<int>(all.size()), kWholePassScan))
            all.push_back(std::move(id));
    return all;
}

} // namespace luaflow::store
