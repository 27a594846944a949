#pragma once
// The executor: the state machine of executions and their actions (SPEC 5): submit -> advance ->
// launch -> settle -> complete. Every change is written to the store first; what follows from it
// (starting an action, answering a waiter) runs after the commit. What it uses has a class of its own:
// the queues and their waiting line, the hosts and their launchers, the watchers of an execution, the
// standard library's services, retry planning and the report.
#include "common/event.hpp"
#include "common/result.hpp"
#include "common/status.hpp"
#include "daemon/config/config.hpp"
#include "daemon/exec/attempt.hpp"
#include "daemon/exec/engine_services.hpp"
#include "daemon/exec/hosts.hpp"
#include "daemon/exec/lua_runner.hpp"
#include "daemon/exec/mock_attempt.hpp"
#include "daemon/exec/process_runner.hpp"
#include "daemon/exec/queues.hpp"
#include "daemon/exec/secrets.hpp"
#include "daemon/exec/submit.hpp"
#include "daemon/exec/success_log.hpp"
#include "daemon/exec/watchers.hpp"
#include "daemon/registry/registry.hpp"
#include "daemon/store/db.hpp"
#include "daemon/store/executions.hpp"
#include "loop/uv_handle.hpp"
#include "notifiers/outbox.hpp"
#include "scripting/task.hpp"
#include "stdlib/services.hpp"

#include <nlohmann/json.hpp>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace luaflow::exec {

// A scheduled run that starts later than this after its time raises the `late` event (SPEC 8).
inline constexpr Millis kLateAfter = 1000;

// How deep workflows.run may nest: a workflow that keeps starting itself stops here with an error.
inline constexpr int kMaxChildDepth = 16;

class Executor final : public ExecutionControl, public stdlib::ChildWorkflows {
  public:
    Executor(uv_loop_t* loop, store::Db& db, registry::Registry& registry, scripting::RunQueue& scheduler,
             const config::Config& config, notifiers::Outbox& outbox);
    ~Executor();

    // Loads the executions the store holds as queued or running and carries them on (SPEC 5).
    void recover();

    // ExecutionControl
    Result<std::string> submit(const SubmitRequest& request) override;
    bool busy(const std::string& workflow) override;
    Counts counts() const override;
    Counts counts(const std::string& workflow) const override;
    Result<ExecStatus> cancel(const std::string& id) override;
    Result<ExecStatus> retry(const std::string& id) override;
    Result<void> when_finished(const std::string& id,
                               std::function<void(const EndReport& report)> fn) override;
    std::uint64_t watch_logs(const std::string& id, std::function<void()> on_lines,
                             std::function<void()> on_end) override;
    void unwatch_logs(std::uint64_t token) override { watchers_.unwatch_logs(token); }
    const Metrics& metrics() const override { return metrics_; }
    ActionCounts action_counts() const override;

    // Graceful stop: no new executions or actions; running ones get `grace`; then they are abandoned
    // (still `running` in the store, so the next start treats them as interrupted) and `done` is called.
    void shutdown(Millis grace, std::function<void()> done);
    bool stopping() const { return stopping_; }
    void apply_config(const config::Config& config);

    // What the sandboxes' standard library uses.
    stdlib::Services& services() { return services_; }

    // luaflowctl test (SPEC 13): the actions of `workflow` named in `mocks` run nothing and end as their
    // mock says; no `after` follower starts (a test runs one workflow).
    void set_mocks(const std::string& workflow, std::map<std::string, Mock> mocks) {
        mocks_[workflow] = std::move(mocks);
    }
    void start_no_followers() { followers_ = false; }
    void echo_logs(EngineServices::LogEcho echo) { services_.echo_logs(std::move(echo)); }

    // stdlib::ChildWorkflows (daemon/exec/children.cpp)
    Result<std::string> start_child(const scripting::Task& task, const std::string& workflow,
                                    const json& input) override;
    Result<void> wait_child(const std::string& child, std::function<void(const json&)> fn) override;

  private:
    struct ActionState {
        ActionStatus status = ActionStatus::pending;
        std::string error; // of its end, when it did not succeed: for the notification of the execution's
        int attempts = 0;
        int attempt_base = 0;
        json node = json::object();
        std::unique_ptr<Attempt> attempt; // the running attempt or `when` check
        // A Lua attempt's start not written yet: with its end when that comes before the commit (one
        // statement instead of two), else just before the commit (write_unwritten_starts).
        std::optional<UnixMillis> start_unwritten;
        // Its row is not in the store yet (a new execution's): written when first needed, with its end
        // when that comes before the commit (write_action_row, finish_action), else before the commit.
        bool row_unwritten = false;
        bool checking_when = false;
        std::unique_ptr<loop::Timer> retry_timer;
        std::optional<UnixMillis> next_attempt_at;
        bool holds_queue_slot = false;
        // A subprocess attempt holds these of its host while it runs.
        Allocation allocation;
        bool holds_allocation = false;
        // Pending until its queue has a free slot or its host the resources; `waiting` says which.
        std::string waiting;
        bool in_wait_list = false;
        // Child executions this action started (workflows.run), oldest first.
        struct Child {
            std::string id, workflow;
            json input;
            int attempt = 0, call = 0;
            std::optional<ExecStatus> ended; // its final status once it has ended
        };
        std::vector<Child> children;
        int child_calls = 0; // workflows.run calls made by the running attempt
        // An attempt's result waits here until the action's children have ended: an action does not
        // finish before its children (SPEC 3).
        std::optional<AttemptResult> held;
        bool held_interrupted = false; // the held result is "interrupted by daemon restart"
        // Needs that have not finished yet, and whether one that did finish did not succeed: advance()
        // starts an action when the first reaches 0, without looking at the others (issue 15).
        std::size_t unfinished_needs = 0;
        bool need_failed = false;
        store::ActionText row; // its row as the store holds it (see Execution::rows_kept)
    };
    struct Execution {
        std::string id;
        std::int64_t seq = 0;
        std::shared_ptr<const scripting::WorkflowDef> def;
        // Its Lua state and functions, held while it runs; null when the workflow runs no Lua (uses_lua).
        std::shared_ptr<const scripting::WorkflowCode> code;
        ExecStatus status = ExecStatus::queued;
        FrozenJson trigger, input, shared; // shared: replaced whole when an action changes ctx.shared
        // The succeeded actions' outputs in the order they finished, shared with the attempts (ctx.outputs
        // reads it).
        std::shared_ptr<scripting::OutputsLog> outputs_log = std::make_shared<scripting::OutputsLog>();
        std::optional<UnixMillis> scheduled_for;
        std::optional<std::string> scheduled_tz;
        std::optional<UnixMillis> started_at;
        std::optional<std::string> parent;
        std::vector<ActionState> actions;
        std::unique_ptr<loop::Timer> timeout_timer;
        // Pending actions whose needs have all finished, in the order they became ready, and how many
        // actions have not finished: advance() works from these, never by scanning every action.
        std::vector<std::size_t> ready;
        std::size_t unfinished = 0;
        bool advancing = false; // inside advance(): a nested call leaves the work to it
        // ctx.shared changed and is not written yet: with the execution's end when that comes before the
        // commit (one statement), else just before the commit (write_unsaved_shared).
        bool shared_unsaved = false;
        // Its row and its actions' as the store holds them, kept by the store's writes, for the report of its
        // end (issue 16). Whole only for an execution submitted since the start: a recovered or retried one
        // has rows from before, and its report reads the store.
        store::ExecutionText row;
        bool rows_kept = false;
        // Events, notifications or children of it may be in the store: the report reads those from there.
        bool has_lists = false;
    };

    Execution* find(const std::string& id);
    // Counts each action's unfinished needs from the statuses and lists the ready ones (a new, retried
    // or recovered execution); from then on finish_action() keeps both up to date.
    void plan(Execution& e);
    // Running from now; its ready actions begin in this turn when `advance_now`, else after the commit.
    void start_execution(Execution& e, bool advance_now = false);
    void arm_execution_timeout(Execution& e);
    void advance(Execution& e);
    void advance_after_commit(const Execution& e);
    void begin_action(Execution& e, std::size_t i);
    void launch_attempt(Execution& e, std::size_t i);
    // The start of a Lua attempt, kept for the end's statement; written before the commit if needed.
    void defer_start_write(Execution& e, std::size_t i, UnixMillis at);
    void write_start(Execution& e, std::size_t i);
    void write_unwritten_starts();
    void write_action_row(Execution& e, std::size_t i);
    void write_unwritten_rows();
    void write_unsaved_shared();
    AttemptSpec attempt_spec(const Execution& e, std::size_t i) const;
    void on_when_checked(const std::string& id, std::size_t i, std::optional<bool> run_it,
                         AttemptResult failure);
    void on_attempt_done(const std::string& id, std::size_t i, int attempt, AttemptResult result);
    void settle_attempt(Execution& e, std::size_t i, AttemptResult result);
    // Children (daemon/exec/children.cpp).
    static std::size_t unfinished_children(const ActionState& a);
    bool hold_for_children(Execution& e, std::size_t i, AttemptResult& result);
    void cancel_children(Execution& e, std::size_t i, const std::string& why);
    void on_child_ended(const std::string& parent, const std::string& child, ExecStatus status);
    void load_children(Execution& e, const std::vector<store::ChildRow>& rows);
    int child_depth(const Execution& e);
    void finish_action(Execution& e, std::size_t i, ActionStatus status, AttemptResult result,
                       std::optional<ActionEvent> event);
    void arm_retry(Execution& e, std::size_t i, UnixMillis at);
    void stop_execution(Execution& e, ExecStatus status, const std::string& error);
    void complete(Execution& e, ExecStatus status, std::optional<std::string> error);
    // The inspect document's text of an execution that ends in this transaction.
    std::string end_report(Execution& e);
    void start_queued(const std::string& workflow);
    void start_followers(const std::string& workflow, const std::string& id, ExecStatus status,
                         const json& report);
    void release_slot(Execution& e, std::size_t i);
    void wait_for(Execution& e, std::size_t i, const std::string& why);
    void wake_waiters();
    void park(std::unique_ptr<Attempt> attempt);
    void check_shutdown_done();
    std::string new_execution_id();
    std::string scratch_dir(const Execution& e, std::size_t i) const;
    void prepare(const std::string& workflow) override;
    void skipped(store::WriteTx& tx, const std::string& workflow, std::int64_t count,
                 const std::string& message) override;
    // The notification of `event` about `e` (action `i` for retry and resource), written in this turn's
    // transaction when a rule asks for it (SPEC 8).
    void notify_event(Execution& e, Event event, std::optional<std::size_t> i = std::nullopt,
                      const std::string& error = {}, const std::string& detail = {});
    // The Lua state and functions an execution of `def` runs with; null when it runs no Lua.
    Result<std::shared_ptr<const scripting::WorkflowCode>>
    code_for(const std::shared_ptr<const scripting::WorkflowDef>& def);
    std::shared_ptr<const scripting::WorkflowDef> definition_for(const std::string& workflow,
                                                                 const std::string& digest);

    uv_loop_t* loop_;
    store::Db& db_;
    registry::Registry& registry_;
    notifiers::Outbox& outbox_;
    std::map<std::string, std::string> passed_env_; // env.pass, read at start (what jobs inherit)
    Secrets secrets_;
    Watchers watchers_{db_};
    Hosts hosts_;
    // Declared before the runners and executions so that it dies after them: their transfers and
    // sandboxes use it.
    EngineServices services_;
    LuaRunner lua_runner_;
    ProcessRunner process_runner_;
    Queues queues_;
    bool wake_scheduled_ = false;
    std::vector<std::pair<std::string, std::size_t>> unwritten_starts_; // (execution, action)
    std::vector<std::string> unsaved_shared_;
    std::vector<std::string> unwritten_rows_; // executions with action rows to write
    std::string state_dir_;

    std::unordered_map<std::string, std::unique_ptr<Execution>> executions_; // queued and running
    std::map<std::string, std::deque<std::string>> queued_;                  // per workflow, oldest first
    std::map<std::string, int> running_per_workflow_;
    std::int64_t next_seq_ = 0;

    std::vector<std::unique_ptr<Attempt>> parked_;
    loop::Timer park_timer_;

    bool stopping_ = false;
    std::map<std::string, std::map<std::string, Mock>> mocks_; // by workflow, then action (tests only)
    bool followers_ = true;
    const Mock* mock_for(const Execution& e, std::size_t i) const;
    Metrics metrics_;
    SuccessLog success_log_;
    std::function<void()> shutdown_done_;
    std::unique_ptr<loop::Timer> grace_timer_;
};

} // namespace luaflow::exec
