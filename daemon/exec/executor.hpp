#pragma once
// The executor: the state machine of executions and their actions (SPEC 5). Every change is written to
// the store first; what follows from it (starting an action, answering a waiter) runs after the commit.
#include "common/result.hpp"
#include "common/status.hpp"
#include "daemon/config/config.hpp"
#include "daemon/exec/attempt.hpp"
#include "daemon/exec/local_launcher.hpp"
#include "daemon/exec/lua_runner.hpp"
#include "daemon/exec/process_runner.hpp"
#include "daemon/exec/resources.hpp"
#include "daemon/exec/secrets.hpp"
#include "daemon/exec/slurm_launcher.hpp"
#include "daemon/exec/ssh_launcher.hpp"
#include "daemon/exec/store_key_value.hpp"
#include "daemon/registry/registry.hpp"
#include "daemon/store/db.hpp"
#include "loop/curl_multi.hpp"
#include "loop/uv_handle.hpp"
#include "scripting/task.hpp"
#include "stdlib/services.hpp"

#include <nlohmann/json.hpp>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace luaflow::store {
struct ChildRow;
}

namespace luaflow::exec {

struct SubmitRequest {
    std::string workflow;
    json input = json::object();
    json input_strings = json::object(); // -i KEY=VALUE, converted to the declared types
    json trigger = {{"type", "manual"}};
    std::optional<UnixMillis> scheduled_for;
    std::optional<std::string> scheduled_tz; // the zone of the rule that fired it
    std::optional<std::string> parent;
    bool queue_even_if_skip = false; // catch-up runs queue even with overlap = "skip"
};

// A scheduled run that starts later than this after its time raises the `late` event (SPEC 8).
inline constexpr Millis kLateAfter = 1000;

struct Counts {
    int running = 0;
    int queued = 0;
};

// How deep workflows.run may nest: a workflow that keeps starting itself stops here with an error.
inline constexpr int kMaxChildDepth = 16;

class Executor final : public stdlib::Services, public stdlib::ChildWorkflows {
  public:
    Executor(uv_loop_t* loop, store::Db& db, registry::Registry& registry, scripting::RunQueue& scheduler,
             const config::Config& config);
    ~Executor() override;

    // Loads the executions the store holds as queued or running and carries them on (SPEC 5).
    void recover();
    // Creates an execution; it starts at once when the workflow's concurrency allows, else queues.
    Result<std::string> submit(const SubmitRequest& request);
    Result<ExecStatus> cancel(const std::string& id);
    Result<ExecStatus> retry(const std::string& id);
    // Calls fn with the inspect document once the execution has ended (at once if it has).
    Result<void> when_finished(const std::string& id, std::function<void(const json& report)> fn);
    // Calls on_line after each commit that added log lines to `id`, and on_end once it has ended.
    std::uint64_t watch_logs(const std::string& id, std::function<void()> on_lines,
                             std::function<void()> on_end);
    void unwatch_logs(std::uint64_t token);

    // Graceful stop: no new executions or actions; running ones get `grace`; then they are abandoned
    // (still `running` in the store, so the next start treats them as interrupted) and `done` is called.
    void shutdown(Millis grace, std::function<void()> done);
    bool stopping() const { return stopping_; }

    Counts counts() const;
    Counts counts(const std::string& workflow) const;
    // At its concurrency limit: a new execution would queue (or be skipped with overlap = "skip").
    bool busy(const std::string& workflow);
    void apply_config(const config::Config& config);

    // stdlib::Services
    uv_loop_t* loop() override { return loop_; }
    void log_line(const scripting::Task* task, const std::string& workflow, stdlib::LogLevel level,
                  const std::string& line) override;
    stdlib::KeyValue* kv() override { return &kv_; }
    std::optional<std::string> env_var(const std::string& name) override { return secrets_.lookup(name); }
    std::map<std::string, std::string> exec_environment() override {
        // exec() runs on this machine and holds no GPU: with GPUs here it sees none (SPEC 3).
        std::map<std::string, std::string> env = passed_env_;
        if (resources_.has_gpus("local")) env["CUDA_VISIBLE_DEVICES"] = "";
        return env;
    }
    std::vector<std::string> sandbox_paths() override { return sandbox_paths_; }
    loop::CurlMulti* curl() override { return &curl_; }
    stdlib::ChildWorkflows* children() override { return this; }

    // stdlib::ChildWorkflows (daemon/exec/children.cpp)
    Result<std::string> start_child(const scripting::Task& task, const std::string& workflow,
                                    const json& input) override;
    Result<void> wait_child(const std::string& child, std::function<void(const json&)> fn) override;

  private:
    struct ActionState {
        ActionStatus status = ActionStatus::pending;
        int attempts = 0;
        int attempt_base = 0;
        json node = json::object();
        std::unique_ptr<Attempt> attempt; // the running attempt or `when` check
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
    };
    struct Execution {
        std::string id;
        std::int64_t seq = 0;
        std::shared_ptr<const scripting::WorkflowDef> def;
        ExecStatus status = ExecStatus::queued;
        json trigger, input, shared;
        json outputs = json::object(); // of the succeeded actions, by name: what ctx.outputs shows
        // The same, in the order they finished, shared with the attempts (ctx.outputs reads it).
        std::shared_ptr<scripting::OutputsLog> outputs_log = std::make_shared<scripting::OutputsLog>();
        std::optional<UnixMillis> scheduled_for;
        std::optional<std::string> scheduled_tz;
        std::optional<UnixMillis> started_at;
        std::optional<std::string> parent;
        std::vector<ActionState> actions;
        std::unique_ptr<loop::Timer> timeout_timer;
    };

    Execution* find(const std::string& id);
    void start_execution(Execution& e);
    void arm_execution_timeout(Execution& e);
    void advance(Execution& e);
    void begin_action(Execution& e, std::size_t i);
    void launch_attempt(Execution& e, std::size_t i);
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
    void finish_action(Execution& e, std::size_t i, ActionStatus status, const AttemptResult& result,
                       std::optional<std::string> event);
    void arm_retry(Execution& e, std::size_t i, UnixMillis at);
    void stop_execution(Execution& e, ExecStatus status, const std::string& error);
    void complete(Execution& e, ExecStatus status, std::optional<std::string> error);
    void start_queued(const std::string& workflow);
    void release_slot(Execution& e, std::size_t i);
    std::optional<std::string> queue_full(const std::string& queue);
    void wait_for(Execution& e, std::size_t i, const std::string& why);
    void wake_waiters();
    JobLauncher* launcher_for(const config::HostConfig& host);
    void detect_gpus();
    void park(std::unique_ptr<Attempt> attempt);
    void notify_logs(const std::string& id);
    void check_shutdown_done();
    std::string new_execution_id();
    std::string scratch_dir(const Execution& e, std::size_t i) const;
    std::shared_ptr<const scripting::WorkflowDef> definition_for(const std::string& workflow,
                                                                 const std::string& digest);

    uv_loop_t* loop_;
    // Declared early so that it dies late: the attempts' transfers are gone by then (~Executor).
    loop::CurlMulti curl_{loop_};
    store::Db& db_;
    registry::Registry& registry_;
    scripting::RunQueue& scheduler_;
    LuaRunner lua_runner_;
    std::map<std::string, std::string> passed_env_; // env.pass, read at start (what jobs inherit)
    StoreKeyValue kv_{db_};
    Secrets secrets_;
    ProcessRunner process_runner_;
    LocalLauncher local_launcher_{loop_};
    std::unique_ptr<SshLauncher> ssh_launcher_;     // made when a job first needs it
    std::unique_ptr<SlurmLauncher> slurm_launcher_; // made when a job first needs it
    ResourcePool resources_;
    std::unique_ptr<loop::ChildProcess> gpu_probe_;
    // Pending actions that wait for a queue slot or resources, oldest first (entries may be stale).
    std::deque<std::pair<std::string, std::size_t>> waiting_;
    bool wake_scheduled_ = false;
    std::string state_dir_;
    std::vector<std::string> sandbox_paths_;
    std::map<std::string, int> queue_limits_;
    std::map<std::string, int> queue_running_;

    std::unordered_map<std::string, std::unique_ptr<Execution>> executions_; // queued and running
    std::map<std::string, std::deque<std::string>> queued_;                  // per workflow, oldest first
    std::map<std::string, int> running_per_workflow_;
    std::int64_t next_seq_ = 0;

    std::unordered_map<std::string, std::vector<std::function<void(const json&)>>> finish_waiters_;
    struct LogWatch {
        std::string execution;
        std::function<void()> on_lines, on_end;
    };
    std::map<std::uint64_t, LogWatch> log_watches_;
    std::set<std::string> logs_dirty_;
    std::uint64_t next_watch_ = 1;

    std::vector<std::unique_ptr<Attempt>> parked_;
    loop::Timer park_timer_;

    bool stopping_ = false;
    std::function<void()> shutdown_done_;
    std::unique_ptr<loop::Timer> grace_timer_;
};

} // namespace luaflow::exec
