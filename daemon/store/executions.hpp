#pragma once
// Executions and their actions in the store: each function is one state change or one read.
// Writes join the turn's transaction (Db::write); nothing here acts on the change.
#include "common/event.hpp"
#include "common/result.hpp"
#include "common/status.hpp"
#include "common/time_format.hpp"
#include "daemon/store/db.hpp"
#include "daemon/store/definitions.hpp"

#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace luaflow::store {

using nlohmann::json;

struct NewExecution {
    std::string id;
    std::int64_t seq = 0;
    std::string workflow;
    std::string definition; // digest
    ExecStatus status = ExecStatus::queued;
    json trigger;
    json input;
    json shared;
    UnixMillis created_at = 0;
    std::optional<UnixMillis> started_at;
    std::optional<UnixMillis> scheduled_for;
    std::optional<std::string> scheduled_tz; // the zone of the rule that fired it
    std::optional<std::string> parent;
    std::vector<std::string> actions; // inserted as pending (the executor writes them itself: insert_action)
};

struct ActionRow {
    std::string name;
    ActionStatus status = ActionStatus::pending;
    int attempts = 0;
    int attempt_base = 0;
    std::optional<json> output;
    std::optional<std::string> error;
    std::optional<std::string> event;
    std::optional<int> exit_code;
    std::optional<std::string> host;
    json node = json::object();
    std::optional<UnixMillis> started_at;
    std::optional<UnixMillis> finished_at;
    std::optional<UnixMillis> next_attempt_at;
    std::optional<std::string> waiting; // pending: why it has not started
    std::optional<json> allocation;     // {"cpus","gpus","memory"} of the latest attempt
};

// A child execution started by an action with workflows.run; its trigger is
// {"type":"child","parent":ID,"action":NAME,"attempt":N,"call":K} (the K-th call of that attempt).
struct ChildRow {
    std::string id;
    std::string workflow;
    ExecStatus status = ExecStatus::queued;
    std::string action;
    int attempt = 0;
    int call = 0;
    json input;
};

struct ExecutionRow {
    std::string id;
    std::int64_t seq = 0;
    std::string workflow;
    std::string definition;
    ExecStatus status = ExecStatus::queued;
    json trigger;
    json input;
    json shared;
    std::optional<std::string> error;
    UnixMillis created_at = 0;
    std::optional<UnixMillis> started_at;
    std::optional<UnixMillis> finished_at;
    std::optional<UnixMillis> scheduled_for;
    std::optional<std::string> scheduled_tz; // null in rows from before migration 6
    std::optional<std::string> parent;
    std::vector<ActionRow> actions;
    std::vector<ChildRow> children;     // oldest first
    json events = json::array();        // [{"event","time","count","message"}]: late, ...
    json notifications = json::array(); // [{"id","notifier","event","status","attempts","error","sent_at"}]
};

struct ActionResult {
    ActionStatus status = ActionStatus::succeeded;
    std::optional<json> output;
    std::optional<std::string> error;
    std::optional<ActionEvent> event;
    std::optional<int> exit_code;
    UnixMillis finished_at = 0;
    std::optional<json> node; // unchanged when absent
    // The attempt's start when it was not written yet (a Lua attempt that ends in the transaction that
    // started it): attempts and started_at are written with the end, in one statement.
    struct Start {
        int attempts = 0;
        UnixMillis at = 0;
    };
    std::optional<Start> start;
};

// An execution's row with its JSON columns as the text the store wrote (json::dump), and an action's:
// what the inspect document is written from without parsing them (exec/report). The executor keeps
// one of each for the executions it runs: the writes below change the kept row as they change the
// store's, so that the report of an execution's end needs no read of it (issue 16).
struct ExecutionText {
    std::string id;
    std::int64_t seq = 0; // the rowid: the updates below find the row by it
    std::string workflow;
    ExecStatus status = ExecStatus::queued;
    std::optional<std::string> trigger, input, shared;
    std::optional<std::string> error;
    UnixMillis created_at = 0;
    std::optional<UnixMillis> started_at, finished_at, scheduled_for;
    std::optional<std::string> scheduled_tz, parent;
};
struct ActionText {
    std::string name, status;
    int attempts = 0, attempt_base = 0;
    std::optional<std::string> output, error, event, host, node, waiting, allocation;
    std::optional<std::int64_t> exit_code, started_at, finished_at, next_attempt_at;
};

std::int64_t max_execution_seq(Db& db);
// The row as written; its actions' rows are pending ones.
ExecutionText insert_execution(WriteTx& tx, const NewExecution& e);
void start_execution(WriteTx& tx, ExecutionText& row, UnixMillis at);
// With `shared`, ctx.shared is written in the same statement (save_shared's, when it changed last in the
// transaction that ends the execution).
void finish_execution(WriteTx& tx, ExecutionText& row, ExecStatus status,
                      const std::optional<std::string>& error, UnixMillis at, const json* shared = nullptr);
// For `retry`: back to running (or queued), clearing the end.
void reopen_execution(WriteTx& tx, ExecutionText& row, ExecStatus status);
void save_shared(WriteTx& tx, ExecutionText& row, const json& shared);

// The action functions name the action by `row.name` in the execution of `execution_seq`.
// `allocation` is what the attempt holds of its host (null for Lua actions).
void start_attempt(WriteTx& tx, std::int64_t execution_seq, ActionText& row, int attempts, UnixMillis at,
                   const std::string& host, const json& allocation = nullptr);
// A pending action that cannot start yet, and why ("queue gpu: 2 of 2 running"); empty clears it.
void set_waiting(WriteTx& tx, std::int64_t execution_seq, ActionText& row, const std::string& why);
void finish_action(WriteTx& tx, std::int64_t execution_seq, ActionText& row, const ActionResult& r);
// An action's row, written when it is first needed rather than with its execution: pending (`end` null),
// or at once as it ended, for an action that ends in the transaction that made its execution (one
// statement instead of two). `seq` is its execution's.
void insert_action(WriteTx& tx, std::int64_t seq, ActionText& row, const ActionResult* end);
void schedule_retry(WriteTx& tx, std::int64_t execution_seq, ActionText& row, UnixMillis next_attempt_at,
                    const std::string& error, const std::optional<json>& node);
// Back to pending for a `retry` of the execution; attempts made so far stop counting against retries.
void reset_action(WriteTx& tx, std::int64_t execution_seq, ActionText& row);

std::vector<ExecutionRow> active_executions(Db& db);
// The executions `parent` started with workflows.run, oldest first.
std::vector<ChildRow> children_of(Db& db, const std::string& parent);
std::optional<ExecutionRow> find_execution(Db& db, const std::string& id);
// Its row as text (children, events and notifications are read by their own functions).
std::optional<ExecutionText> find_execution_text(Db& db, const std::string& id);
// The execution's actions by name, one at a time.
void each_action_text(Db& db, const std::string& id, const std::function<void(const ActionText&)>& fn);
// The id of the execution named by `id_or_prefix`: exact, or a unique prefix.
Result<std::string> resolve_execution(Db& db, const std::string& id_or_prefix);

struct ExecutionFilter {
    std::optional<std::string> workflow;
    std::optional<ExecStatus> status;
    int limit = 50;
};
// Newest first: {"id","workflow","status","trigger","created_at","started_at","finished_at"}.
json list_executions(Db& db, const ExecutionFilter& filter);
// {"id","status","finished_at"} of the newest execution of `workflow`, or null.
json last_execution(Db& db, const std::string& workflow);

std::optional<bool> enabled_override(Db& db, const std::string& workflow);
void set_enabled_override(WriteTx& tx, const std::string& workflow, bool enabled);

json time_or_null(const std::optional<UnixMillis>& t);

} // namespace luaflow::store
