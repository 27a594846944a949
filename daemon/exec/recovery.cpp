// Start-up and stop: carrying on what the store holds (SPEC 5), and the graceful stop (SPEC 1).
#include "common/log.hpp"
#include "daemon/exec/executor.hpp"
#include "daemon/exec/slurm_launcher.hpp"
#include "daemon/store/executions.hpp"
#include "daemon/store/logs.hpp"

namespace luaflow::exec {

namespace {
constexpr const char* kInterrupted = "interrupted by daemon restart";
bool is_lua_kind(scripting::ActionKind k) {
    return k == scripting::ActionKind::run || k == scripting::ActionKind::script;
}
} // namespace

void Executor::recover() {
    std::vector<store::ExecutionRow> rows = store::active_executions(db_);
    std::vector<std::string> running;
    for (store::ExecutionRow& row : rows) {
        auto def = definition_for(row.workflow, row.definition);
        Result<std::shared_ptr<const scripting::WorkflowCode>> code =
            std::shared_ptr<const scripting::WorkflowCode>();
        if (def) code = code_for(def);
        if (!def || !code) {
            if (!code) log::error("execution %s: %s", row.id.c_str(), code.error().message.c_str());
            store::ExecutionText text; // not kept: the execution is not loaded
            text.id = row.id;
            text.seq = row.seq;
            store::finish_execution(db_.write(), text, ExecStatus::failed,
                                    std::string("its definition cannot be loaded after a restart"),
                                    now_unix_ms());
            continue;
        }
        auto e = std::make_unique<Execution>();
        e->id = row.id;
        e->seq = row.seq;
        e->def = def;
        e->code = std::move(code.value());
        e->status = row.status;
        e->trigger = freeze(row.trigger);
        e->input = freeze(row.input);
        e->shared = row.shared.is_object() ? freeze(row.shared) : frozen_object();
        e->scheduled_for = row.scheduled_for;
        e->scheduled_tz = row.scheduled_tz;
        e->started_at = row.started_at;
        e->parent = row.parent;
        e->row.id = row.id; // not kept whole (rows_kept): the report reads the store
        e->row.seq = row.seq;
        e->actions.resize(def->actions.size());
        for (std::size_t i = 0; i < def->actions.size(); ++i)
            e->actions[i].row.name = def->actions[i].name;
        for (const store::ActionRow& ar : row.actions) {
            auto idx = def->action_index(ar.name);
            if (!idx) continue;
            ActionState& a = e->actions[*idx];
            a.status = ar.status;
            a.attempts = ar.attempts;
            a.attempt_base = ar.attempt_base;
            if (ar.status == ActionStatus::succeeded && ar.output) {
                e->outputs_log->add(ar.name, *ar.output);
            }
            a.node = ar.node;
            a.next_attempt_at = ar.next_attempt_at;
        }
        load_children(*e, row.children);
        plan(*e);
        if (e->status == ExecStatus::queued) {
            queued_[def->id].push_back(e->id);
            executions_.emplace(e->id, std::move(e));
            continue;
        }
        for (std::size_t i = 0; i < e->actions.size(); ++i) {
            ActionState& a = e->actions[i];
            const scripting::ActionDef& ad = def->actions[i];
            if (a.status == ActionStatus::running) {
                // A Slurm job of the interrupted attempt is the cluster's: cancel it by the name it was
                // submitted with (local and ssh jobs were ended before recovery, see leftovers.hpp).
                if (const config::HostConfig* host = hosts_.host(ad.host);
                    host && host->kind == config::HostConfig::Kind::slurm && !is_lua_kind(ad.kind))
                    hosts_.slurm().cancel_by_name(e->id + "/" + ad.name + "/" + std::to_string(a.attempts));
                // The attempt the daemon was running when it stopped counts as made.
                int used = a.attempts - a.attempt_base;
                services_.job_log(e->id, ad.name, a.attempts, "log",
                                  std::string("attempt ") + std::to_string(used) + " " + kInterrupted);
                if (used <= ad.retries) {
                    a.status = ActionStatus::pending;
                    a.next_attempt_at = now_unix_ms();
                    store::schedule_retry(db_.write(), e->seq, a.row, *a.next_attempt_at, kInterrupted,
                                          std::nullopt);
                } else {
                    AttemptResult r;
                    r.kind = AttemptResult::Kind::failed;
                    r.error = kInterrupted;
                    // It fails, but not before the children it started (they carry on) have ended.
                    if (unfinished_children(a) > 0) {
                        a.held = std::move(r);
                        a.held_interrupted = true;
                        services_.job_log(e->id, ad.name, a.attempts, "log",
                                          "no retries left: the action fails once its " +
                                              std::to_string(unfinished_children(a)) +
                                              " unfinished child execution(s) have ended");
                    } else {
                        finish_action(*e, i, ActionStatus::failed, r, ActionEvent::interrupted);
                    }
                }
            }
            if (a.status == ActionStatus::pending && a.next_attempt_at) arm_retry(*e, i, *a.next_attempt_at);
        }
        log::info_about({def->id, e->id, {}}, "execution %s of %s resumes after a restart", e->id.c_str(),
                        def->id.c_str());
        ++running_per_workflow_[def->id];
        running.push_back(e->id);
        executions_.emplace(e->id, std::move(e));
    }
    for (const std::string& id : running) {
        Execution* e = find(id);
        arm_execution_timeout(*e);
        advance_after_commit(*e);
    }
    std::vector<std::string> workflows;
    for (const auto& [wf, q] : queued_)
        if (!q.empty()) workflows.push_back(wf);
    for (const std::string& wf : workflows)
        start_queued(wf);
}

void Executor::shutdown(Millis grace, std::function<void()> done) {
    stopping_ = true;
    shutdown_done_ = std::move(done);
    for (auto& [id, e] : executions_)
        for (auto& a : e->actions)
            if (a.retry_timer) a.retry_timer->stop();
    grace_timer_ = std::make_unique<loop::Timer>(loop_);
    grace_timer_->start(static_cast<std::uint64_t>(grace), [this] {
        // Still running after the grace period: abandon them. The store keeps them `running`, so the next
        // start treats them as interrupted; subprocesses get SIGTERM, then SIGKILL.
        int n = 0;
        for (auto& [id, e] : executions_)
            for (auto& a : e->actions)
                if (a.attempt) {
                    a.attempt->cancel();
                    park(std::move(a.attempt));
                    ++n;
                }
        if (n) log::warn("shutdown grace over: %d running action(s) interrupted", n);
        check_shutdown_done();
    });
    check_shutdown_done();
}

void Executor::check_shutdown_done() {
    if (!stopping_ || !shutdown_done_) return;
    for (const auto& [id, e] : executions_)
        for (const auto& a : e->actions)
            if (a.attempt) return;
    grace_timer_.reset();
    auto done = std::move(shutdown_done_);
    shutdown_done_ = nullptr;
    db_.after_commit(std::move(done));
}

} // namespace luaflow::exec
