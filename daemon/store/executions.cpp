#include "daemon/store/executions.hpp"

#include "daemon/store/events.hpp"
#include "daemon/store/notifications.hpp"

#include <cassert>

namespace luaflow::store {

namespace {

json parse_json_column(const std::string& text) {
    json v = json::parse(text, nullptr, false);
    return v.is_discarded() ? json() : v;
}

std::optional<json> opt_json(const std::optional<std::string>& text) {
    if (!text) return std::nullopt;
    return parse_json_column(*text);
}

std::optional<int> opt_int(const std::optional<std::int64_t>& v) {
    if (!v) return std::nullopt;
    return static_cast<int>(*v);
}

constexpr const char* kExecutionColumns = "id, seq, workflow, definition, status, trigger, input, shared, "
                                          "error, created_at, started_at, finished_at, "
                                          "scheduled_for, parent, scheduled_tz";

// The row's columns (kExecutionColumns), its JSON ones as the text stored.
ExecutionText read_execution_text(Stmt::Use& q) {
    ExecutionText r;
    r.id = q.text(0);
    r.seq = q.int64(1);
    r.workflow = q.text(2);
    r.status = parse_exec_status(q.text(4)).value_or(ExecStatus::failed);
    r.trigger = q.opt_text(5);
    r.input = q.opt_text(6);
    r.shared = q.opt_text(7);
    r.error = q.opt_text(8);
    r.created_at = q.int64(9);
    r.started_at = q.opt_int64(10);
    r.finished_at = q.opt_int64(11);
    r.scheduled_for = q.opt_int64(12);
    r.parent = q.opt_text(13);
    r.scheduled_tz = q.opt_text(14);
    return r;
}

ExecutionRow read_execution(Stmt::Use& q) {
    ExecutionText t = read_execution_text(q);
    ExecutionRow r;
    r.id = std::move(t.id);
    r.seq = t.seq;
    r.workflow = std::move(t.workflow);
    r.definition = q.text(3);
    r.status = t.status;
    r.trigger = parse_json_column(t.trigger.value_or(""));
    r.input = parse_json_column(t.input.value_or(""));
    r.shared = parse_json_column(t.shared.value_or(""));
    r.error = std::move(t.error);
    r.created_at = t.created_at;
    r.started_at = t.started_at;
    r.finished_at = t.finished_at;
    r.scheduled_for = t.scheduled_for;
    r.parent = std::move(t.parent);
    r.scheduled_tz = std::move(t.scheduled_tz);
    return r;
}

void read_actions(Db& db, ExecutionRow& r) {
    each_action_text(db, r.id, [&r](const ActionText& t) {
        ActionRow a;
        a.name = t.name;
        a.status = parse_action_status(t.status).value_or(ActionStatus::failed);
        a.attempts = t.attempts;
        a.attempt_base = t.attempt_base;
        a.output = opt_json(t.output);
        a.error = t.error;
        a.event = t.event;
        a.exit_code = opt_int(t.exit_code);
        a.host = t.host;
        if (auto node = opt_json(t.node); node && node->is_object()) a.node = *node;
        a.started_at = t.started_at;
        a.finished_at = t.finished_at;
        a.next_attempt_at = t.next_attempt_at;
        a.waiting = t.waiting;
        a.allocation = opt_json(t.allocation);
        r.actions.push_back(std::move(a));
    });
}

std::optional<std::string> dumped_or_null(const std::optional<json>& v) {
    if (!v) return std::nullopt;
    return v->dump();
}

// Binds a text (or null) and keeps it in the caller's row, one copy for each.
void bind_kept(Stmt::Use& q, const char* name, std::optional<std::string>& kept,
               std::optional<std::string> value) {
    kept = std::move(value);
    q.bind(name, kept);
}

// An action's end: what finish_action and insert_action write of it alike, kept in `row` as written.
void bind_end(Stmt::Use& q, ActionText& row, const ActionResult& r) {
    row.status = to_string(r.status);
    q.bind(":status", row.status);
    bind_kept(q, ":output", row.output, dumped_or_null(r.output));
    bind_kept(q, ":error", row.error, r.error);
    bind_kept(q, ":event", row.event,
              r.event ? std::optional<std::string>(to_string(*r.event)) : std::nullopt);
    q.bind(":at", r.finished_at);
    row.finished_at = r.finished_at;
    row.exit_code = r.exit_code;
    q.bind(":exit_code", row.exit_code);
    if (r.node)
        bind_kept(q, ":node", row.node, r.node->dump());
    else
        q.bind_null(":node"); // COALESCE(:node, node): the row's stays
    row.next_attempt_at.reset();
    row.waiting.reset();
}

} // namespace

json time_or_null(const std::optional<UnixMillis>& t) {
    return t ? json(format_rfc3339(*t)) : json();
}

std::int64_t max_execution_seq(Db& db) {
    static constexpr const char* kSql = "SELECT COALESCE(MAX(seq), 0) FROM executions";
    Stmt::Use q(db.stmt(kSql));
    return q.step() ? q.int64(0) : 0;
}

namespace {
// Every row the executor updates was read or inserted with its seq: 0 would update nothing, silently.
std::int64_t row_seq(const ExecutionText& row) {
    assert(row.seq > 0 && "an execution's row is updated by its seq");
    return row.seq;
}
} // namespace

ExecutionText insert_execution(WriteTx& tx, const NewExecution& e) {
    static constexpr const char* kSql =
        "INSERT INTO executions(id, seq, workflow, definition, status, trigger, input, shared, created_at, "
        "started_at, scheduled_for, scheduled_tz, parent) "
        "VALUES (:id, :seq, :workflow, :definition, :status, :trigger, :input, :shared, :created_at, "
        ":started_at, :scheduled_for, :scheduled_tz, :parent)";
    static constexpr const char* kActionSql =
        "INSERT INTO actions(execution_seq, name, status) VALUES (:seq, :name, 'pending')";
    Db& db = tx.db();
    ExecutionText row;
    row.id = e.id;
    row.seq = e.seq;
    row.workflow = e.workflow;
    row.status = e.status;
    row.created_at = e.created_at;
    row.started_at = e.started_at;
    row.scheduled_for = e.scheduled_for;
    row.scheduled_tz = e.scheduled_tz;
    row.parent = e.parent;
    {
        Stmt::Use q(db.stmt(kSql));
        q.bind(":id", e.id)
            .bind(":seq", e.seq)
            .bind(":workflow", e.workflow)
            .bind(":definition", e.definition);
        q.bind(":status", to_string(e.status));
        bind_kept(q, ":trigger", row.trigger, json_text(e.trigger));
        bind_kept(q, ":input", row.input, json_text(e.input));
        bind_kept(q, ":shared", row.shared, json_text(e.shared));
        q.bind(":created_at", e.created_at).bind(":started_at", e.started_at);
        q.bind(":scheduled_for", e.scheduled_for).bind(":scheduled_tz", e.scheduled_tz);
        q.bind(":parent", e.parent).run();
    }
    for (const std::string& name : e.actions) {
        Stmt::Use q(db.stmt(kActionSql));
        q.bind(":seq", e.seq).bind(":name", name).run();
    }
    return row;
}

void start_execution(WriteTx& tx, ExecutionText& row, UnixMillis at) {
    static constexpr const char* kSql =
        "UPDATE executions SET status = 'running', started_at = COALESCE(started_at, :at) WHERE seq = :seq";
    Db& db = tx.db();
    Stmt::Use q(db.stmt(kSql));
    q.bind(":seq", row_seq(row)).bind(":at", at).run();
    row.status = ExecStatus::running;
    if (!row.started_at) row.started_at = at;
}

void finish_execution(WriteTx& tx, ExecutionText& row, ExecStatus status,
                      const std::optional<std::string>& error, UnixMillis at, const json* shared) {
    static constexpr const char* kSql =
        "UPDATE executions SET status = :status, error = :error, finished_at = :at WHERE seq = :seq";
    static constexpr const char* kWithSharedSql = "UPDATE executions SET status = :status, error = :error, "
                                                  "finished_at = :at, shared = :shared WHERE seq = :seq";
    Db& db = tx.db();
    Stmt::Use q(db.stmt(shared ? kWithSharedSql : kSql));
    q.bind(":seq", row_seq(row)).bind(":status", to_string(status)).bind(":at", at);
    bind_kept(q, ":error", row.error, error);
    if (shared) bind_kept(q, ":shared", row.shared, json_text(*shared));
    q.run();
    row.status = status;
    row.finished_at = at;
}

void reopen_execution(WriteTx& tx, ExecutionText& row, ExecStatus status) {
    static constexpr const char* kSql =
        "UPDATE executions SET status = :status, error = NULL, finished_at = NULL WHERE seq = :seq";
    Db& db = tx.db();
    Stmt::Use q(db.stmt(kSql));
    q.bind(":seq", row_seq(row)).bind(":status", to_string(status)).run();
    row.status = status;
    row.error.reset();
    row.finished_at.reset();
}

void save_shared(WriteTx& tx, ExecutionText& row, const json& shared) {
    static constexpr const char* kSql = "UPDATE executions SET shared = :shared WHERE seq = :seq";
    Db& db = tx.db();
    Stmt::Use q(db.stmt(kSql));
    q.bind(":seq", row_seq(row));
    bind_kept(q, ":shared", row.shared, json_text(shared));
    q.run();
}

void start_attempt(WriteTx& tx, std::int64_t execution_seq, ActionText& row, int attempts, UnixMillis at,
                   const std::string& host, const json& allocation) {
    static constexpr const char* kSql =
        "UPDATE actions SET status = 'running', attempts = :attempts, started_at = :at, finished_at = NULL, "
        "next_attempt_at = NULL, waiting = NULL, host = :host, allocation = :allocation "
        "WHERE execution_seq = :execution_seq AND name = :action";
    Db& db = tx.db();
    Stmt::Use q(db.stmt(kSql));
    q.bind(":execution_seq", execution_seq)
        .bind(":action", row.name)
        .bind(":attempts", attempts)
        .bind(":at", at);
    bind_kept(q, ":host", row.host, host.empty() ? std::nullopt : std::optional<std::string>(host));
    bind_kept(q, ":allocation", row.allocation,
              allocation.is_null() ? std::nullopt : std::optional<std::string>(json_text(allocation)));
    q.run();
    row.status = "running";
    row.attempts = attempts;
    row.started_at = at;
    row.finished_at.reset();
    row.next_attempt_at.reset();
    row.waiting.reset();
}

void set_waiting(WriteTx& tx, std::int64_t execution_seq, ActionText& row, const std::string& why) {
    static constexpr const char* kSql =
        "UPDATE actions SET waiting = :why WHERE execution_seq = :execution_seq AND name = :action";
    Db& db = tx.db();
    Stmt::Use q(db.stmt(kSql));
    q.bind(":execution_seq", execution_seq).bind(":action", row.name);
    bind_kept(q, ":why", row.waiting, why.empty() ? std::nullopt : std::optional<std::string>(why));
    q.run();
}

void finish_action(WriteTx& tx, std::int64_t execution_seq, ActionText& row, const ActionResult& r) {
    static constexpr const char* kSql =
        "UPDATE actions SET status = :status, output = :output, error = :error, event = :event, "
        "exit_code = :exit_code, finished_at = :at, node = COALESCE(:node, node), next_attempt_at = NULL, "
        "waiting = NULL WHERE execution_seq = :execution_seq AND name = :action";
    // The same with what start_attempt writes for a Lua attempt (no host, no allocation).
    static constexpr const char* kSqlWithStart =
        "UPDATE actions SET status = :status, output = :output, error = :error, event = :event, "
        "exit_code = :exit_code, finished_at = :at, node = COALESCE(:node, node), next_attempt_at = NULL, "
        "waiting = NULL, attempts = :attempts, started_at = :started_at, host = NULL, allocation = NULL "
        "WHERE execution_seq = :execution_seq AND name = :action";
    Db& db = tx.db();
    Stmt::Use q(db.stmt(r.start ? kSqlWithStart : kSql));
    q.bind(":execution_seq", execution_seq).bind(":action", row.name);
    if (r.start) {
        q.bind(":attempts", r.start->attempts).bind(":started_at", r.start->at);
        row.attempts = r.start->attempts;
        row.started_at = r.start->at;
        row.host.reset();
        row.allocation.reset();
    }
    bind_end(q, row, r);
    q.run();
}

void insert_action(WriteTx& tx, std::int64_t seq, ActionText& row, const ActionResult* end) {
    static constexpr const char* kPendingSql =
        "INSERT INTO actions(execution_seq, name, status) VALUES (:seq, :name, 'pending')";
    static constexpr const char* kEndedSql =
        "INSERT INTO actions(execution_seq, name, status, attempts, output, error, event, exit_code, node, "
        "started_at, finished_at) VALUES (:seq, :name, :status, :attempts, :output, :error, :event, "
        ":exit_code, :node, :started_at, :at)";
    Db& db = tx.db();
    Stmt::Use q(db.stmt(end ? kEndedSql : kPendingSql));
    q.bind(":seq", seq).bind(":name", row.name);
    ActionText fresh; // what the columns not written hold: their defaults
    fresh.name = std::move(row.name);
    row = std::move(fresh);
    if (!end) {
        row.status = "pending";
        return q.run();
    }
    const ActionResult& r = *end;
    row.attempts = r.start ? r.start->attempts : 0;
    row.started_at = r.start ? std::optional<UnixMillis>(r.start->at) : std::nullopt;
    q.bind(":attempts", row.attempts).bind(":started_at", row.started_at);
    bind_end(q, row, r);
    q.run();
}

void schedule_retry(WriteTx& tx, std::int64_t execution_seq, ActionText& row, UnixMillis next_attempt_at,
                    const std::string& error, const std::optional<json>& node) {
    static constexpr const char* kSql =
        "UPDATE actions SET status = 'pending', error = :error, next_attempt_at = :next, "
        "node = COALESCE(:node, node), finished_at = NULL WHERE execution_seq = :execution_seq AND name = "
        ":action";
    Db& db = tx.db();
    Stmt::Use q(db.stmt(kSql));
    q.bind(":execution_seq", execution_seq).bind(":action", row.name).bind(":next", next_attempt_at);
    bind_kept(q, ":error", row.error, error);
    if (node)
        bind_kept(q, ":node", row.node, node->dump());
    else
        q.bind_null(":node");
    q.run();
    row.status = "pending";
    row.next_attempt_at = next_attempt_at;
    row.finished_at.reset();
}

void reset_action(WriteTx& tx, std::int64_t execution_seq, ActionText& row) {
    static constexpr const char* kSql =
        "UPDATE actions SET status = 'pending', attempt_base = attempts, output = NULL, error = NULL, event "
        "= NULL, "
        "exit_code = NULL, started_at = NULL, finished_at = NULL, next_attempt_at = NULL, waiting = NULL "
        "WHERE execution_seq = :execution_seq AND name = :action";
    Db& db = tx.db();
    Stmt::Use q(db.stmt(kSql));
    q.bind(":execution_seq", execution_seq).bind(":action", row.name).run();
    row.status = "pending";
    row.attempt_base = row.attempts;
    row.output.reset();
    row.error.reset();
    row.event.reset();
    row.exit_code.reset();
    row.started_at.reset();
    row.finished_at.reset();
    row.next_attempt_at.reset();
    row.waiting.reset();
}

std::vector<ExecutionRow> active_executions(Db& db) {
    static const std::string sql = std::string("SELECT ") + kExecutionColumns +
                                   " FROM executions WHERE status IN ('queued', 'running') ORDER BY seq";
    std::vector<ExecutionRow> rows;
    {
        Stmt::Use q(db.stmt(sql.c_str()));
        while (q.step())
            rows.push_back(read_execution(q));
    }
    for (ExecutionRow& r : rows) {
        read_actions(db, r);
        r.children = children_of(db, r.id);
    }
    return rows;
}

std::vector<ChildRow> children_of(Db& db, const std::string& parent) {
    static constexpr const char* kSql =
        "SELECT id, workflow, status, trigger, input FROM executions WHERE parent = :parent ORDER BY seq";
    std::vector<ChildRow> out;
    Stmt::Use q(db.stmt(kSql));
    q.bind(":parent", parent);
    while (q.step()) {
        ChildRow c;
        c.id = q.text(0);
        c.workflow = q.text(1);
        c.status = parse_exec_status(q.text(2)).value_or(ExecStatus::failed);
        json trigger = parse_json_column(q.text(3));
        if (trigger.is_object()) {
            c.action = trigger.value("action", "");
            c.attempt = trigger.value("attempt", 0);
            c.call = trigger.value("call", 0);
        }
        c.input = parse_json_column(q.text(4));
        out.push_back(std::move(c));
    }
    return out;
}

std::optional<ExecutionRow> find_execution(Db& db, const std::string& id) {
    static const std::string sql =
        std::string("SELECT ") + kExecutionColumns + " FROM executions WHERE id = :id";
    std::optional<ExecutionRow> row;
    {
        Stmt::Use q(db.stmt(sql.c_str()));
        q.bind(":id", id);
        if (q.step()) row = read_execution(q);
    }
    if (!row) return row;
    row->children = children_of(db, id);
    row->events = execution_events(db, id);
    row->notifications = execution_notifications(db, id);
    read_actions(db, *row);
    return row;
}

std::optional<ExecutionText> find_execution_text(Db& db, const std::string& id) {
    static const std::string sql =
        std::string("SELECT ") + kExecutionColumns + " FROM executions WHERE id = :id";
    Stmt::Use q(db.stmt(sql.c_str()));
    q.bind(":id", id);
    if (!q.step()) return std::nullopt;
    return read_execution_text(q);
}

void each_action_text(Db& db, const std::string& id, const std::function<void(const ActionText&)>& fn) {
    static constexpr const char* kSql =
        "SELECT name, status, attempts, attempt_base, output, error, event, "
        "exit_code, host, node, started_at, "
        "finished_at, next_attempt_at, waiting, allocation FROM actions "
        "WHERE execution_seq = (SELECT seq FROM executions WHERE id = :id) ORDER BY name";
    Stmt::Use q(db.stmt(kSql));
    q.bind(":id", id);
    ActionText a;
    while (q.step()) {
        a.name = q.text(0);
        a.status = q.text(1);
        a.attempts = static_cast<int>(q.int64(2));
        a.attempt_base = static_cast<int>(q.int64(3));
        a.output = q.opt_text(4);
        a.error = q.opt_text(5);
        a.event = q.opt_text(6);
        a.exit_code = q.opt_int64(7);
        a.host = q.opt_text(8);
        a.node = q.opt_text(9);
        a.started_at = q.opt_int64(10);
        a.finished_at = q.opt_int64(11);
        a.next_attempt_at = q.opt_int64(12);
        a.waiting = q.opt_text(13);
        a.allocation = q.opt_text(14);
        fn(a);
    }
}

Result<std::string> resolve_execution(Db& db, const std::string& id_or_prefix) {
    static constexpr const char* kSql =
        "SELECT id FROM executions WHERE id >= :prefix AND id < :end ORDER BY id LIMIT 2";
    if (id_or_prefix.empty() || id_or_prefix.size() > 64)
        return make_error(ErrorCode::invalid, "execution id must be 1 to 64 characters");
    Stmt::Use q(db.stmt(kSql));
    // Every id that starts with the prefix sorts in [prefix, prefix + U+10FFFF).
    q.bind(":prefix", id_or_prefix).bind(":end", id_or_prefix + "\xf4\x8f\xbf\xbf");
    std::vector<std::string> found;
    while (q.step())
        found.push_back(q.text(0));
    if (found.empty()) return make_error(ErrorCode::not_found, "no execution '" + id_or_prefix + "'");
    if (found.size() > 1 && found[0] != id_or_prefix)
        return make_error(ErrorCode::invalid, "execution id prefix '" + id_or_prefix + "' is ambiguous");
    return found[0];
}

json list_executions(Db& db, const ExecutionFilter& filter) {
    static constexpr const char* kSql =
        "SELECT id, workflow, status, trigger, created_at, started_at, finished_at FROM executions "
        "WHERE (:workflow IS NULL OR workflow = :workflow) AND (:status IS NULL OR status = "
        ":status) "
        "ORDER BY seq DESC LIMIT :limit";
    Stmt::Use q(db.stmt(kSql));
    q.bind(":workflow", filter.workflow);
    if (filter.status)
        q.bind(":status", to_string(*filter.status));
    else
        q.bind_null(":status");
    q.bind(":limit", filter.limit);
    json out = json::array();
    while (q.step()) {
        json trigger = parse_json_column(q.text(3));
        out.push_back(
            {{"id", q.text(0)},
             {"workflow", q.text(1)},
             {"status", q.text(2)},
             {"trigger", trigger.is_object() && trigger.contains("type") ? trigger["type"] : json()},
             {"created_at", time_or_null(q.int64(4))},
             {"started_at", time_or_null(q.opt_int64(5))},
             {"finished_at", time_or_null(q.opt_int64(6))}});
    }
    return out;
}

json last_execution(Db& db, const std::string& workflow) {
    static constexpr const char* kSql =
        "SELECT id, status, finished_at FROM executions WHERE workflow = :workflow ORDER BY seq DESC LIMIT 1";
    Stmt::Use q(db.stmt(kSql));
    q.bind(":workflow", workflow);
    if (!q.step()) return nullptr;
    return {{"id", q.text(0)}, {"status", q.text(1)}, {"finished_at", time_or_null(q.opt_int64(2))}};
}

std::optional<bool> enabled_override(Db& db, const std::string& workflow) {
    static constexpr const char* kSql = "SELECT enabled FROM workflow_settings WHERE workflow = :workflow";
    Stmt::Use q(db.stmt(kSql));
    q.bind(":workflow", workflow);
    if (!q.step() || q.is_null(0)) return std::nullopt;
    return q.int64(0) != 0;
}

void set_enabled_override(WriteTx& tx, const std::string& workflow, bool enabled) {
    static constexpr const char* kSql =
        "INSERT INTO workflow_settings(workflow, enabled) VALUES (:workflow, :enabled) "
        "ON CONFLICT(workflow) DO UPDATE SET enabled = excluded.enabled";
    Db& db = tx.db();
    Stmt::Use q(db.stmt(kSql));
    q.bind(":workflow", workflow).bind(":enabled", enabled ? 1 : 0).run();
}

} // namespace luaflow::store
