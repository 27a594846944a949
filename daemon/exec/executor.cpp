#include "daemon/exec/executor.hpp"

#include "common/log.hpp"
#include "daemon/exec/input.hpp"
#include "daemon/exec/report.hpp"
#include "daemon/exec/retry_plan.hpp"
#include "daemon/store/events.hpp"
#include "daemon/store/executions.hpp"
#include "daemon/store/logs.hpp"
#include "daemon/store/notifications.hpp"
#include "daemon/store/schedules.hpp"

#include <algorithm>
#include <cstdlib>
#include <numeric>
#include <random>

namespace luaflow::exec {

using scripting::ActionKind;

namespace {

bool is_lua(ActionKind k) {
    return k == ActionKind::run || k == ActionKind::script;
}

const std::vector<std::string> kDefaultPass = {"PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME"};

} // namespace

Executor::Executor(uv_loop_t* loop, store::Db& db, registry::Registry& registry,
                   scripting::RunQueue& scheduler, const config::Config& config, notifiers::Outbox& outbox)
    : loop_(loop), db_(db), registry_(registry), outbox_(outbox),
      passed_env_(passed_environment(config.env.pass.empty() ? kDefaultPass : config.env.pass)),
      hosts_(loop, config.state, passed_env_),
      services_(loop, db, secrets_, watchers_, hosts_, passed_env_, *this, outbox), lua_runner_(scheduler),
      process_runner_(
          loop,
          [this](const std::string& execution, const std::string& action, int attempt, const char* stream,
                 std::string line) {
              services_.job_log(execution, action, attempt, stream, std::move(line));
          },
          lua_runner_, [this](std::string text) { return secrets_.redact(std::move(text)); }),
      state_dir_(config.state), park_timer_(loop) {
    // A host's GPUs found: actions waiting for them may start.
    hosts_.set_on_change([this] { wake_waiters(); });
    services_.on_notification_added([this](const std::string& id) {
        if (Execution* e = find(id)) e->has_lists = true;
    });
    apply_config(config);
    next_seq_ = store::max_execution_seq(db_);
}

Executor::~Executor() {
    // Attempts first: their callbacks point into this executor.
    for (auto& [id, e] : executions_)
        for (auto& a : e->actions)
            if (a.attempt) a.attempt->cancel();
    executions_.clear();
    parked_.clear();
}

void Executor::apply_config(const config::Config& config) {
    secrets_.load(config, config.env.pass.empty() ? kDefaultPass : config.env.pass);
    services_.set_sandbox_paths(config.sandbox.paths);
    queues_.configure(config.queues);
    hosts_.configure(config.hosts);
    // A larger queue or host may let waiting actions start.
    if (queues_.anyone_waiting()) wake_waiters();
}

std::string Executor::new_execution_id() {
    // Random ids, so that a short prefix is enough to name one (as with git); order comes from `seq`.
    static std::mt19937_64 rng{std::random_device{}()};
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
    return buf;
}

std::string Executor::scratch_dir(const Execution& e, std::size_t i) const {
    return state_dir_ + "/scratch/" + e.id + "/" + e.def->actions[i].name;
}

Executor::Execution* Executor::find(const std::string& id) {
    auto it = executions_.find(id);
    return it == executions_.end() ? nullptr : it->second.get();
}

// From the per-workflow tallies, not by walking the executions: `status` stays cheap with thousands.
Counts Executor::counts() const {
    Counts c;
    for (const auto& [wf, n] : running_per_workflow_)
        c.running += n;
    for (const auto& [wf, q] : queued_)
        c.queued += static_cast<int>(q.size());
    return c;
}

Counts Executor::counts(const std::string& workflow) const {
    Counts c;
    if (auto it = running_per_workflow_.find(workflow); it != running_per_workflow_.end())
        c.running = it->second;
    if (auto it = queued_.find(workflow); it != queued_.end()) c.queued = static_cast<int>(it->second.size());
    return c;
}

std::shared_ptr<const scripting::WorkflowDef> Executor::definition_for(const std::string& workflow,
                                                                       const std::string& digest) {
    if (const auto* entry = registry_.find(workflow);
        entry && entry->def && entry->def->source_hash == digest)
        return entry->def;
    auto stored = registry_.load_stored(digest);
    if (!stored) {
        log::error("workflow %s: cannot load definition %s: %s", workflow.c_str(), digest.c_str(),
                   stored.error().message.c_str());
        return nullptr;
    }
    return stored.value();
}

Result<std::shared_ptr<const scripting::WorkflowCode>>
Executor::code_for(const std::shared_ptr<const scripting::WorkflowDef>& def) {
    if (!def->uses_lua) return std::shared_ptr<const scripting::WorkflowCode>();
    return registry_.code_for(def);
}

void Executor::prepare(const std::string& workflow) {
    if (const registry::WorkflowEntry* entry = registry_.find(workflow); entry && entry->def)
        (void)code_for(entry->def);
}

Result<std::string> Executor::submit(const SubmitRequest& r) {
    if (stopping_ && !r.follows) return make_error(ErrorCode::unavailable, "luaflowd is shutting down");
    const registry::WorkflowEntry* entry = registry_.find(r.workflow);
    if (!entry) return make_error(ErrorCode::not_found, "no workflow '" + r.workflow + "'");
    if (!entry->def)
        return make_error(ErrorCode::conflict,
                          "workflow '" + r.workflow + "' does not load: " + entry->error->to_string());
    std::shared_ptr<const scripting::WorkflowDef> def = entry->def;
    // A full disk refuses new work from every door: a child (workflows.run) or an `after` trigger too.
    bool first_refusal = false;
    if (auto room = db_.admit_new_work(def->id, first_refusal); !room) return room.error();
    // The turn's transaction first: the read below is then part of it, not a read transaction of its own
    // (shared-memory locks taken and dropped for one row, on every run).
    (void)db_.write();
    if (!store::enabled_override(db_, def->id).value_or(def->enabled))
        return make_error(ErrorCode::conflict,
                          "workflow '" + def->id + "' is disabled (luaflowctl enable " + def->id + ")");
    std::string trigger_type = r.trigger.value("type", "manual");
    // The API is a manual run from another machine: triggers.manual = false refuses both.
    if ((trigger_type == "manual" || trigger_type == "api") && !def->triggers.manual)
        return make_error(ErrorCode::conflict, "workflow '" + def->id +
                                                   "' does not allow manual runs "
                                                   "(triggers.manual = false)");
    auto input = check_input(*def, r.input, r.input_strings);
    if (!input) return input.error();

    int running = running_per_workflow_[def->id];
    bool start_now = !stopping_ && running < def->concurrency && queued_[def->id].empty();
    if (!start_now && def->overlap == scripting::Overlap::skip && !r.queue_even_if_skip) {
        return make_error(ErrorCode::conflict, "workflow '" + def->id + "' is at its concurrency limit (" +
                                                   std::to_string(def->concurrency) +
                                                   ") and its overlap is \"skip\"");
    }
    auto code = code_for(def);
    if (!code) return code.error();
    auto e = std::make_unique<Execution>();
    e->id = new_execution_id();
    e->seq = ++next_seq_;
    e->def = def;
    e->code = std::move(code.value());
    e->status = start_now ? ExecStatus::running : ExecStatus::queued;
    e->trigger = freeze(r.trigger);
    e->input = freeze(std::move(input.value()));
    e->shared = def->context.is_object() ? freeze(def->context) : frozen_object();
    e->scheduled_for = r.scheduled_for;
    e->scheduled_tz = r.scheduled_tz;
    e->parent = r.parent;
    e->actions.resize(def->actions.size());
    plan(*e);

    store::NewExecution row;
    row.id = e->id;
    row.seq = e->seq;
    row.workflow = def->id;
    row.definition = def->source_hash;
    row.status = e->status;
    row.trigger = *e->trigger;
    row.input = *e->input;
    row.shared = *e->shared;
    row.created_at = r.triggered_at.value_or(now_unix_ms());
    if (start_now) row.started_at = e->started_at = row.created_at;
    row.scheduled_for = e->scheduled_for;
    row.scheduled_tz = e->scheduled_tz;
    row.parent = e->parent;
    // Its actions' rows are written when first needed: an action that ends in this transaction is
    // written once, as it ended (issue 16: two statements less per action of a Lua chain).
    e->row = store::insert_execution(db_.write(), row);
    e->rows_kept = true;
    for (std::size_t i = 0; i < e->actions.size(); ++i) {
        ActionState& a = e->actions[i];
        a.row_unwritten = true;
        a.row.name = def->actions[i].name;
        a.row.status = "pending";
    }
    if (unwritten_rows_.empty()) db_.before_commit([this] { write_unwritten_rows(); });
    unwritten_rows_.push_back(e->id);

    std::string id = e->id;
    Execution& ref = *e;
    executions_.emplace(id, std::move(e));
    if (start_now) {
        ++running_per_workflow_[def->id];
        // Its first actions' attempts are written with it, in this turn's transaction (one commit less
        // per execution, issue 16); they start after the commit. A child's wait for the turn after: its
        // parent's Lua is still on the stack.
        start_execution(ref, !r.parent && !r.follows);
    } else {
        queued_[def->id].push_back(id);
    }
    return id;
}

bool Executor::busy(const std::string& workflow) {
    const registry::WorkflowEntry* entry = registry_.find(workflow);
    if (!entry || !entry->def) return false;
    return running_per_workflow_[workflow] >= entry->def->concurrency || !queued_[workflow].empty();
}

void Executor::start_execution(Execution& e, bool advance_now) {
    store::WriteTx& tx = db_.write(); // the start and its `late` event commit together
    e.status = ExecStatus::running;
    if (!e.started_at) {
        e.started_at = now_unix_ms();
        store::start_execution(tx, e.row, *e.started_at);
    }
    if (e.scheduled_for && *e.started_at - *e.scheduled_for > kLateAfter) {
        std::string message = "started " + format_duration(*e.started_at - *e.scheduled_for) +
                              " after its scheduled time " +
                              tz::format_scheduled(*e.scheduled_for, e.scheduled_tz);
        log::info_about({e.def->id, e.id, {}}, "execution %s of %s: %s", e.id.c_str(), e.def->id.c_str(),
                        message.c_str());
        store::record_event(tx, {e.def->id, e.id, Event::late, *e.started_at, 1, message});
        e.has_lists = true;
        notify_event(e, Event::late, std::nullopt, {}, message);
    }
    arm_execution_timeout(e);
    if (advance_now)
        advance(e); // may end it (nothing to run): `e` is not used after
    else
        advance_after_commit(e);
}

void Executor::arm_execution_timeout(Execution& e) {
    if (!e.def->timeout) return;
    Millis elapsed = e.started_at ? std::max<Millis>(0, now_unix_ms() - *e.started_at) : 0;
    Millis left = std::max<Millis>(0, *e.def->timeout - elapsed);
    e.timeout_timer = std::make_unique<loop::Timer>(loop_);
    std::string id = e.id;
    Millis limit = *e.def->timeout;
    e.timeout_timer->start(static_cast<std::uint64_t>(left), [this, id, limit] {
        if (Execution* x = find(id); x && x->status == ExecStatus::running)
            stop_execution(*x, ExecStatus::timed_out, "execution timed out after " + format_duration(limit));
    });
}

void Executor::plan(Execution& e) {
    const auto& defs = e.def->actions;
    e.ready.clear();
    e.ready.reserve(defs.size());
    e.unfinished = 0;
    for (std::size_t i = 0; i < defs.size(); ++i) {
        ActionState& a = e.actions[i];
        a.unfinished_needs = 0;
        a.need_failed = false;
        for (std::size_t d : defs[i].deps) {
            ActionStatus ds = e.actions[d].status;
            if (!is_finished(ds))
                ++a.unfinished_needs;
            else if (ds != ActionStatus::succeeded)
                a.need_failed = true;
        }
        if (!is_finished(a.status)) ++e.unfinished;
        // One with a retry due joins when its timer fires (arm_retry).
        if (a.status == ActionStatus::pending && a.unfinished_needs == 0 && !a.next_attempt_at)
            e.ready.push_back(i);
    }
}

// Starts what the graph allows, skips what can no longer run, and ends the execution when all is done.
// Works from the ready list, so an action's end costs its dependents, not a scan of every action.
// May destroy `e`: callers must not use it afterwards.
void Executor::advance(Execution& e) {
    // A report that comes at once from inside begin_action() lands here again: the running call sees
    // what it added to the ready list, since it reads the list's size as it goes.
    if (e.status != ExecStatus::running || e.advancing) return;
    e.advancing = true;
    const std::string id = e.id;
    const auto& defs = e.def->actions;
    std::size_t kept = 0; // while stopping: ready, but nothing new starts; they stay at the front
    for (std::size_t k = 0; k < e.ready.size(); ++k) {
        std::size_t i = e.ready[k];
        ActionState& a = e.actions[i];
        if (a.status != ActionStatus::pending || a.attempt || a.in_wait_list ||
            (a.retry_timer && a.retry_timer->active()))
            continue;
        if (a.need_failed && !defs[i].always) {
            finish_action(e, i, ActionStatus::skipped, {}, std::nullopt); // appends its dependents
            continue;
        }
        if (stopping_) {
            e.ready[kept++] = i;
            continue;
        }
        begin_action(e, i);
        if (!find(id)) return;
    }
    e.ready.resize(kept);
    e.advancing = false;
    if (e.unfinished > 0) return;
    for (std::size_t i = 0; i < defs.size(); ++i) {
        ActionStatus s = e.actions[i].status;
        if (s == ActionStatus::failed || s == ActionStatus::timed_out) {
            complete(e, ExecStatus::failed,
                     "action '" + defs[i].name + "' " +
                         (s == ActionStatus::timed_out ? "timed out" : "failed"));
            return;
        }
    }
    complete(e, ExecStatus::succeeded, std::nullopt);
}

void Executor::advance_after_commit(const Execution& e) {
    db_.after_commit([this, id = e.id] {
        if (Execution* x = find(id)) advance(*x);
    });
}

AttemptSpec Executor::attempt_spec(const Execution& e, std::size_t i) const {
    AttemptSpec s;
    s.def = e.def;
    s.code = e.code;
    s.action = i;
    s.execution = e.id;
    s.trigger = e.trigger;
    s.input = e.input;
    s.shared = e.shared;
    s.outputs = e.outputs_log;
    s.outputs_seen = e.outputs_log->size();
    s.node = e.actions[i].node;
    s.attempt = std::max(1, e.actions[i].attempts);
    s.scheduled_for = e.scheduled_for;
    s.scheduled_tz = e.scheduled_tz;
    s.scratch = scratch_dir(e, i);
    const scripting::ActionDef& a = e.def->actions[i];
    s.timeout = a.timeout
                    ? a.timeout
                    : (is_lua(a.kind) ? std::optional<Millis>(scripting::kDefaultLuaTimeout) : std::nullopt);
    return s;
}

void Executor::begin_action(Execution& e, std::size_t i) {
    const scripting::ActionDef& def = e.def->actions[i];
    if (!def.has_when) {
        launch_attempt(e, i);
        return;
    }
    ActionState& a = e.actions[i];
    a.checking_when = true;
    std::string id = e.id;
    AttemptSpec spec = attempt_spec(e, i);
    spec.attempt = a.attempts + 1;
    a.attempt = lua_runner_.check_when(std::move(spec),
                                       [this, id, i](std::optional<bool> run_it, AttemptResult failure) {
                                           on_when_checked(id, i, run_it, std::move(failure));
                                       });
    // Its Lua runs once what led here is committed (advance() may run in the turn that submitted it).
    db_.after_commit([this, id, i] {
        Execution* x = find(id);
        if (!x) return;
        ActionState& s = x->actions[i];
        if (s.checking_when && s.attempt) s.attempt->start();
    });
}

void Executor::on_when_checked(const std::string& id, std::size_t i, std::optional<bool> run_it,
                               AttemptResult failure) {
    Execution* e = find(id);
    if (!e) return;
    ActionState& a = e->actions[i];
    if (!a.checking_when) return;
    a.checking_when = false;
    park(std::move(a.attempt));
    if (e->status != ExecStatus::running) return;
    if (!run_it) {
        failure.error = "when: " + failure.error;
        finish_action(*e, i, ActionStatus::failed, failure,
                      failure.kind == AttemptResult::Kind::resource
                          ? std::optional<ActionEvent>(ActionEvent::resource)
                          : std::nullopt);
    } else if (!*run_it) {
        finish_action(*e, i, ActionStatus::skipped, {}, std::nullopt);
    } else {
        launch_attempt(*e, i);
        if (!find(id)) return;
    }
    advance(*e);
}

// A pending action that cannot start yet: it says why (inspect shows it) and waits in line.
void Executor::wait_for(Execution& e, std::size_t i, const std::string& why) {
    ActionState& a = e.actions[i];
    if (a.waiting != why) {
        a.waiting = why;
        write_action_row(e, i);
        store::set_waiting(db_.write(), e.seq, a.row, why);
    }
    if (!a.in_wait_list) {
        a.in_wait_list = true;
        queues_.join({e.id, i});
    }
}

// Something came free: the waiting actions try again, oldest first, once the change that freed it
// is committed. One that still cannot start goes back in line in its place.
void Executor::wake_waiters() {
    if (wake_scheduled_) return;
    wake_scheduled_ = true;
    // After the commit of this turn's changes (one is opened if none is: what freed room may not have
    // written anything).
    db_.write();
    db_.after_commit([this] {
        wake_scheduled_ = false;
        if (stopping_) return;
        queues_.pass(
            [this](const Waiter& w) -> std::optional<std::string> {
                Execution* x = find(w.execution);
                if (!x || x->status != ExecStatus::running) return std::nullopt;
                const ActionState& a = x->actions[w.action];
                if (!a.in_wait_list || a.status != ActionStatus::pending) return std::nullopt;
                return x->def->actions[w.action].queue;
            },
            [this](const Waiter& w) {
                Execution* x = find(w.execution);
                x->actions[w.action].in_wait_list = false;
                launch_attempt(*x, w.action);
            });
    });
}

void Executor::release_slot(Execution& e, std::size_t i) {
    ActionState& a = e.actions[i];
    bool freed = false;
    if (a.holds_queue_slot) {
        a.holds_queue_slot = false;
        queues_.give_back(e.def->actions[i].queue);
        freed = true;
    }
    if (a.holds_allocation) {
        a.holds_allocation = false;
        hosts_.resources().release(e.def->actions[i].host, a.allocation);
        freed = true;
    }
    if (freed && queues_.anyone_waiting()) wake_waiters();
}

void Executor::launch_attempt(Execution& e, std::size_t i) {
    const scripting::ActionDef& def = e.def->actions[i];
    ActionState& a = e.actions[i];
    // A mocked action runs nothing: no host resources, and at once, like a Lua attempt.
    bool lua = is_lua(def.kind) || mock_for(e, i);
    if (auto full = queues_.full(def.queue)) return wait_for(e, i, *full);
    if (!lua) {
        Grant grant = hosts_.resources().acquire(def.host, def.resources);
        if (grant.kind == Grant::Kind::wait) return wait_for(e, i, grant.why);
        if (grant.kind == Grant::Kind::impossible) {
            // It would wait for ever: it fails now, naming what is missing.
            AttemptResult r;
            r.kind = AttemptResult::Kind::failed;
            r.error = grant.why;
            services_.job_log(e.id, def.name, a.attempts, "log", "cannot start: " + grant.why);
            a.waiting.clear();
            finish_action(e, i, ActionStatus::failed, r, std::nullopt);
            advance_after_commit(e);
            return;
        }
        a.allocation = std::move(grant.allocation);
        a.holds_allocation = true;
    }
    queues_.take(def.queue);
    a.holds_queue_slot = true;
    a.waiting.clear();
    a.status = ActionStatus::running;
    ++a.attempts;
    a.child_calls = 0;
    if (lua) {
        a.start_unwritten = now_unix_ms(); // written once its turn on the run queue comes (below)
    } else {
        write_action_row(e, i);
        store::start_attempt(db_.write(), e.seq, a.row, a.attempts, now_unix_ms(), def.host,
                             allocation_json(a.allocation));
    }
    std::string id = e.id;
    int attempt_no = a.attempts;
    auto begin = [this, id, i, attempt_no] {
        Execution* x = find(id);
        if (!x || x->status != ExecStatus::running) return;
        ActionState& s = x->actions[i];
        if (s.status != ActionStatus::running || s.attempts != attempt_no || s.attempt) return;
        const scripting::ActionDef& d = x->def->actions[i];
        AttemptSpec spec = attempt_spec(*x, i);
        AttemptDone done = [this, id, i, attempt_no](AttemptResult r) {
            on_attempt_done(id, i, attempt_no, std::move(r));
        };
        if (const Mock* mock = mock_for(*x, i)) {
            s.attempt = mock_attempt(*mock, std::move(done));
        } else if (is_lua(d.kind)) {
            // Many runs at once wait for their turn on the run queue: until it comes nothing of the
            // attempt has run and nothing of it is written. Then its start goes with its end, or before
            // the commit if it waits: one statement, not two, per action under load (6 % of the loop's
            // time with 20 000 pipelined runs).
            auto begun = [this, id, i, attempt_no] {
                Execution* y = find(id);
                if (y && y->actions[i].attempts == attempt_no && y->actions[i].start_unwritten)
                    defer_start_write(*y, i, now_unix_ms());
            };
            s.attempt = lua_runner_.run(std::move(spec), std::move(done), std::move(begun));
        } else {
            SubprocessPlan plan;
            plan.argv =
                d.kind == ActionKind::shell ? std::vector<std::string>{"/bin/sh", "-c", d.shell} : d.cmd;
            plan.expand = d.kind == ActionKind::cmd && d.expands_argv;
            plan.base_env = passed_env_;
            plan.allocation = s.allocation;
            plan.host_name = d.host;
            const config::HostConfig* host = hosts_.host(d.host);
            plan.host = host ? *host : config::HostConfig{};
            plan.launcher = hosts_.launcher_for(plan.host);
            s.attempt = process_runner_.run(std::move(spec), std::move(plan), std::move(done));
        }
        // start() may report at once; the report parks the attempt instead of destroying it.
        s.attempt->start();
    };
    // A child process is an effect outside the daemon: it starts once its start is committed. A Lua
    // attempt is queued on the run queue now, and runs before this turn's commit: an action that ends
    // at once starts its dependents in the same pass, and a chain of them commits once (issue 16). A
    // crash before that commit leaves the action pending, to run again, as it would leave it running.
    if (lua)
        begin();
    else
        db_.after_commit(std::move(begin));
}

const Mock* Executor::mock_for(const Execution& e, std::size_t i) const {
    if (mocks_.empty()) return nullptr;
    auto w = mocks_.find(e.def->id);
    if (w == mocks_.end()) return nullptr;
    auto m = w->second.find(e.def->actions[i].name);
    return m == w->second.end() ? nullptr : &m->second;
}

void Executor::defer_start_write(Execution& e, std::size_t i, UnixMillis at) {
    e.actions[i].start_unwritten = at;
    if (unwritten_starts_.empty()) db_.before_commit([this] { write_unwritten_starts(); });
    unwritten_starts_.emplace_back(e.id, i);
    db_.write(); // the transaction the start belongs to is open: the commit that runs the hook comes
}

void Executor::write_start(Execution& e, std::size_t i) {
    ActionState& a = e.actions[i];
    if (!a.start_unwritten) return;
    write_action_row(e, i);
    store::start_attempt(db_.write(), e.seq, a.row, a.attempts, *a.start_unwritten, "");
    a.start_unwritten.reset();
}

void Executor::write_action_row(Execution& e, std::size_t i) {
    ActionState& a = e.actions[i];
    if (!a.row_unwritten) return;
    store::insert_action(db_.write(), e.seq, a.row, nullptr);
    a.row_unwritten = false;
}

void Executor::write_unwritten_rows() {
    std::vector<std::string> ids;
    ids.swap(unwritten_rows_);
    for (const std::string& id : ids)
        if (Execution* e = find(id))
            for (std::size_t i = 0; i < e->actions.size(); ++i)
                write_action_row(*e, i);
}

void Executor::write_unsaved_shared() {
    std::vector<std::string> ids;
    ids.swap(unsaved_shared_);
    for (const std::string& id : ids) {
        Execution* e = find(id);
        if (!e || !e->shared_unsaved) continue;
        store::save_shared(db_.write(), e->row, secrets_.redact(*e->shared));
        e->shared_unsaved = false;
    }
}

void Executor::write_unwritten_starts() {
    std::vector<std::pair<std::string, std::size_t>> starts;
    starts.swap(unwritten_starts_);
    for (const auto& [id, i] : starts)
        if (Execution* e = find(id)) write_start(*e, i);
}

void Executor::on_attempt_done(const std::string& id, std::size_t i, int attempt_no, AttemptResult r) {
    Execution* e = find(id);
    if (!e) return;
    ActionState& a = e->actions[i];
    if (a.status != ActionStatus::running || a.attempts != attempt_no) return;
    park(std::move(a.attempt));
    release_slot(*e, i);
    if (r.node) a.node = std::move(*r.node);
    if (hold_for_children(*e, i, r)) return;
    settle_attempt(*e, i, std::move(r));
}

// What an attempt's end means for its action: done, or retried. May end the execution.
void Executor::settle_attempt(Execution& ex, std::size_t i, AttemptResult r) {
    Execution* e = &ex;
    ActionState& a = e->actions[i];
    const scripting::ActionDef& def = e->def->actions[i];
    if (r.kind == AttemptResult::Kind::succeeded) {
        if (!r.shared_changes.empty()) {
            // A new value: attempts that started before hold the one they saw.
            json shared = *e->shared;
            for (auto it = r.shared_changes.begin(); it != r.shared_changes.end(); ++it) {
                if (it.value().is_null())
                    shared.erase(it.key());
                else
                    shared[it.key()] = it.value();
            }
            e->shared = freeze(std::move(shared));
            if (!e->shared_unsaved) {
                e->shared_unsaved = true;
                if (unsaved_shared_.empty()) db_.before_commit([this] { write_unsaved_shared(); });
                unsaved_shared_.push_back(e->id);
                db_.write(); // the transaction it belongs to is open: the commit that runs the hook comes
            }
        }
        finish_action(*e, i, ActionStatus::succeeded, std::move(r), std::nullopt);
        advance(*e);
        return;
    }
    AfterFailure plan =
        after_failure(def, a.attempts - a.attempt_base, r.kind == AttemptResult::Kind::timed_out, r.error);
    std::string what = secrets_.redact(plan.what);
    // While stopping, the retry is recorded but not started: the next start picks it up.
    if (plan.retry) {
        Millis delay = plan.delay;
        UnixMillis at = now_unix_ms() + delay;
        services_.job_log(e->id, def.name, a.attempts, "log",
                          what + "; retrying in " + format_duration(delay));
        log::info_about({e->def->id, e->id, def.name}, "execution %s: action '%s' %s; retrying in %s",
                        e->id.c_str(), def.name.c_str(), what.c_str(), format_duration(delay).c_str());
        a.status = ActionStatus::pending;
        a.next_attempt_at = at;
        write_start(*e, i); // the attempt counts, and shows when it started
        write_action_row(*e, i);
        store::schedule_retry(db_.write(), e->seq, a.row, at, secrets_.redact(r.error), a.node);
        if (r.kind == AttemptResult::Kind::resource) notify_event(*e, Event::resource, i, what);
        notify_event(*e, Event::retry, i, what,
                     "attempt " + std::to_string(a.attempts + 1) + " in " + format_duration(delay));
        arm_retry(*e, i, at);
        return;
    }
    services_.job_log(e->id, def.name, a.attempts, "log", what);
    log::info_about({e->def->id, e->id, def.name}, "execution %s: action '%s' %s", e->id.c_str(),
                    def.name.c_str(), what.c_str());
    ActionStatus status =
        r.kind == AttemptResult::Kind::timed_out ? ActionStatus::timed_out : ActionStatus::failed;
    std::optional<ActionEvent> event;
    if (r.kind == AttemptResult::Kind::resource) {
        event = ActionEvent::resource;
        notify_event(*e, Event::resource, i, what);
    }
    finish_action(*e, i, status, r, event);
    advance(*e);
}

void Executor::arm_retry(Execution& e, std::size_t i, UnixMillis at) {
    ActionState& a = e.actions[i];
    a.retry_timer = std::make_unique<loop::Timer>(loop_);
    std::string id = e.id;
    Millis wait = std::max<Millis>(0, at - now_unix_ms());
    a.retry_timer->start(static_cast<std::uint64_t>(wait), [this, id, i] {
        Execution* x = find(id);
        if (!x) return;
        x->actions[i].retry_timer->stop();
        x->actions[i].next_attempt_at.reset();
        x->ready.push_back(i);
        advance(*x);
    });
}

void Executor::finish_action(Execution& e, std::size_t i, ActionStatus status, AttemptResult r,
                             std::optional<ActionEvent> event) {
    ActionState& a = e.actions[i];
    if (!is_finished(a.status)) {
        --e.unfinished;
        for (std::size_t d : e.def->actions[i].dependents) {
            ActionState& b = e.actions[d];
            if (status != ActionStatus::succeeded) b.need_failed = true;
            if (--b.unfinished_needs == 0 && b.status == ActionStatus::pending) e.ready.push_back(d);
        }
    }
    a.status = status;
    a.next_attempt_at.reset();
    ++metrics_.workflows[e.def->id].actions[to_string(status)];
    store::ActionResult row;
    row.status = status;
    if (status == ActionStatus::succeeded) {
        row.output = secrets_.redact(r.output);
        e.outputs_log->add(e.def->actions[i].name, std::move(r.output));
    } else if (!r.error.empty()) {
        row.error = secrets_.redact(r.error);
        a.error = *row.error;
    }
    row.event = std::move(event);
    row.exit_code = r.exit_code;
    row.finished_at = now_unix_ms();
    row.node = a.node;
    if (a.start_unwritten) {
        row.start = store::ActionResult::Start{a.attempts, *a.start_unwritten};
        a.start_unwritten.reset();
    }
    if (a.row_unwritten) {
        store::insert_action(db_.write(), e.seq, a.row, &row);
        a.row_unwritten = false;
    } else {
        store::finish_action(db_.write(), e.seq, a.row, row);
    }
}

void Executor::stop_execution(Execution& e, ExecStatus status, const std::string& error) {
    // Children first: they end with their parent (and tell it after the commit, when it is gone).
    for (std::size_t i = 0; i < e.actions.size(); ++i)
        cancel_children(e, i, "its parent execution " + e.id + " " + to_string(status));
    for (std::size_t i = 0; i < e.actions.size(); ++i) {
        ActionState& a = e.actions[i];
        a.held.reset();
        if (a.attempt) {
            a.attempt->cancel();
            park(std::move(a.attempt));
        }
        a.checking_when = false;
        a.in_wait_list = false;
        a.waiting.clear();
        release_slot(e, i);
        if (a.retry_timer) a.retry_timer->stop();
        if (is_finished(a.status)) continue;
        AttemptResult r;
        ActionStatus s = ActionStatus::cancelled;
        if (a.status == ActionStatus::running && status == ExecStatus::timed_out) {
            s = ActionStatus::timed_out;
            r.error = error;
        }
        finish_action(e, i, s, r, std::nullopt);
    }
    complete(e, status, error);
}

void Executor::complete(Execution& e, ExecStatus status, std::optional<std::string> error) {
    for (auto& a : e.actions) {
        if (a.attempt) {
            a.attempt->cancel();
            park(std::move(a.attempt));
        }
    }
    bool was_running = e.status == ExecStatus::running;
    UnixMillis now = now_unix_ms();
    if (error) error = secrets_.redact(*error);
    std::optional<json> shared;
    if (e.shared_unsaved) shared = secrets_.redact(*e.shared);
    e.shared_unsaved = false;
    store::finish_execution(db_.write(), e.row, status, error, now, shared ? &*shared : nullptr);
    e.status = status;
    notify_event(e,
                 status == ExecStatus::succeeded   ? Event::success
                 : status == ExecStatus::timed_out ? Event::timeout
                 : status == ExecStatus::cancelled ? Event::cancelled
                                                   : Event::failure,
                 std::nullopt, error.value_or(""));
    WorkflowMetrics& m = metrics_.workflows[e.def->id];
    ++m.executions[to_string(status)];
    m.duration.observe(static_cast<double>(now - e.started_at.value_or(now)) / 1000.0);
    if (status != ExecStatus::succeeded) {
        log::info_about({e.def->id, e.id, {}}, "execution %s of %s %s%s%s", e.id.c_str(), e.def->id.c_str(),
                        to_string(status), error ? ": " : "", error ? error->c_str() : "");
    } else if (SuccessLog::Verdict v = success_log_.on_success(e.def->id, now); v.log) {
        if (v.unlogged == 0)
            log::info_about({e.def->id, e.id, {}}, "execution %s of %s succeeded", e.id.c_str(),
                            e.def->id.c_str());
        else
            log::info_about({e.def->id, e.id, {}},
                            "execution %s of %s succeeded (and %llu more since the last such line)",
                            e.id.c_str(), e.def->id.c_str(), static_cast<unsigned long long>(v.unlogged));
    }
    std::string id = e.id;
    std::string workflow = e.def->id;
    if (was_running) {
        --running_per_workflow_[workflow];
    } else {
        auto& q = queued_[workflow];
        q.erase(std::remove(q.begin(), q.end(), id), q.end());
    }
    // The rows of actions that never ran (their execution ended first): the report and the store show them.
    for (std::size_t i = 0; i < e.actions.size(); ++i)
        write_action_row(e, i);
    Watchers::Ended watchers = watchers_.take(id);
    // The report is written now, in the transaction that ends the run, and given after its commit. As
    // text: the waiters on the socket and HTTP send it as it is.
    std::shared_ptr<const EndReport> report;
    const std::vector<std::string>& followers = registry_.followers_of(workflow);
    if (!watchers.waiters.empty() || !followers.empty())
        report = std::make_shared<const EndReport>(end_report(e));
    std::optional<std::string> parent = e.parent;
    executions_.erase(id);
    start_queued(workflow);
    if (!followers.empty()) start_followers(workflow, id, status, report->doc());
    db_.after_commit([this, id, status, parent = std::move(parent), watchers = std::move(watchers),
                      report = std::move(report)] {
        if (parent) on_child_ended(*parent, id, status);
        for (const auto& w : watchers.waiters)
            w(*report);
        for (const auto& end : watchers.log_ends)
            end();
    });
    check_shutdown_done();
}

std::string Executor::end_report(Execution& e) {
    if (!e.rows_kept) return inspect_text(db_, e.id).value_or("null");
    // Written from the rows kept; only the lists that may hold something are read (none, in the common case).
    std::vector<std::size_t> by_name(e.actions.size());
    std::iota(by_name.begin(), by_name.end(), 0);
    std::sort(by_name.begin(), by_name.end(),
              [&](std::size_t a, std::size_t b) { return e.actions[a].row.name < e.actions[b].row.name; });
    ReportWriter writer(e.has_lists ? store::children_of(db_, e.id) : std::vector<store::ChildRow>{});
    for (std::size_t i : by_name)
        writer.action(e.actions[i].row);
    json events = e.has_lists ? store::execution_events(db_, e.id) : json::array();
    json notifications = e.has_lists ? store::execution_notifications(db_, e.id) : json::array();
    std::string text = writer.finish(e.row, events, notifications);
#ifndef NDEBUG
    // Debug builds (the sanitizer run of CI) check every kept report against the store's.
    if (std::string stored = inspect_text(db_, e.id).value_or("null"); stored != text) {
        log::error("execution %s: the report kept differs from the store's:\nkept:   %s\nstored: %s",
                   e.id.c_str(), text.c_str(), stored.c_str());
        std::abort();
    }
#endif
    return text;
}

void Executor::notify_event(Execution& e, Event event, std::optional<std::size_t> i, const std::string& error,
                            const std::string& detail) {
    if (outbox_.targets(event, e.def->notify).empty()) return; // the common case: no rule, no cost
    e.has_lists = true;
    notifiers::Message m;
    m.event = to_string(event);
    m.workflow = e.def->id;
    m.execution = e.id;
    m.time_ms = now_unix_ms();
    m.error = secrets_.redact(error);
    m.detail = detail;
    if (i) {
        m.action = e.def->actions[*i].name;
        m.status = to_string(e.actions[*i].status);
    } else {
        m.status = to_string(e.status);
        // "action 'fetch' failed" says where; the action's own error says why (its stderr line).
        for (std::size_t k = 0; k < e.actions.size(); ++k)
            if (!e.actions[k].error.empty() && e.actions[k].status != ActionStatus::cancelled)
                m.error += "\n" + e.def->actions[k].name + ": " + e.actions[k].error;
    }
    if (e.started_at) m.duration_ms = m.time_ms - *e.started_at;
    outbox_.raise(db_.write(), event, e.def->notify, m);
}

void Executor::skipped(store::WriteTx& tx, const std::string& workflow, std::int64_t count,
                       const std::string& message) {
    UnixMillis now = now_unix_ms();
    store::record_event(tx, {workflow, std::nullopt, Event::skipped, now, count, message});
    store::add_skipped(tx, workflow, count);
    const registry::WorkflowEntry* entry = registry_.find(workflow);
    json rules = entry && entry->def ? entry->def->notify : json::object();
    if (outbox_.targets(Event::skipped, rules).empty()) return;
    notifiers::Message m;
    m.event = to_string(Event::skipped);
    m.workflow = workflow;
    m.time_ms = now;
    m.detail = message;
    outbox_.raise(tx, Event::skipped, rules, m);
}

ActionCounts Executor::action_counts() const {
    ActionCounts c;
    for (const auto& [id, e] : executions_)
        for (std::size_t i = 0; i < e->actions.size(); ++i) {
            const ActionState& a = e->actions[i];
            if (a.status == ActionStatus::running) ++c.running;
            if (a.in_wait_list) {
                ++c.waiting;
                ++c.waiting_by_queue[e->def->actions[i].queue];
            }
        }
    return c;
}

// SPEC 4: `after = { workflow=, on= }` starts its workflow when an execution of the named one ends with a
// matching status ("failure": failed or timed out; "any": every end, a cancel too), with that execution's
// report as input. Written in the transaction that writes the end: a crash loses both or neither.
void Executor::start_followers(const std::string& workflow, const std::string& id, ExecStatus status,
                               const json& report) {
    if (!followers_) return;
    const std::vector<std::string> followers = registry_.followers_of(workflow); // submit may reload
    for (const std::string& follower : followers) {
        const registry::WorkflowEntry* entry = registry_.find(follower);
        if (!entry || !entry->def) continue;
        const std::string on = entry->def->triggers.after.value("on", "success");
        bool matches = on == "any" || (on == "success" && status == ExecStatus::succeeded) ||
                       (on == "failure" && (status == ExecStatus::failed || status == ExecStatus::timed_out));
        if (!matches) continue;
        SubmitRequest r;
        r.workflow = follower;
        r.input = report;
        r.trigger = {
            {"type", "after"}, {"workflow", workflow}, {"execution", id}, {"status", to_string(status)}};
        r.follows = true;
        auto started = submit(r);
        if (started)
            log::info_about({follower, *started, {}},
                            "execution %s of %s started after execution %s of %s (%s)", started->c_str(),
                            follower.c_str(), id.c_str(), workflow.c_str(), to_string(status));
        else
            log::error("workflow %s: not started after execution %s of %s (%s): %s", follower.c_str(),
                       id.c_str(), workflow.c_str(), to_string(status), started.error().message.c_str());
    }
}

void Executor::start_queued(const std::string& workflow) {
    if (stopping_) return;
    auto& q = queued_[workflow];
    while (!q.empty()) {
        Execution* e = find(q.front());
        if (!e) {
            q.pop_front();
            continue;
        }
        const auto* entry = registry_.find(workflow);
        int limit = entry && entry->def ? entry->def->concurrency : e->def->concurrency;
        if (running_per_workflow_[workflow] >= limit) return;
        q.pop_front();
        ++running_per_workflow_[workflow];
        start_execution(*e);
    }
}

Result<ExecStatus> Executor::cancel(const std::string& id) {
    if (Execution* e = find(id)) {
        stop_execution(*e, ExecStatus::cancelled, "cancelled");
        return ExecStatus::cancelled;
    }
    auto row = store::find_execution(db_, id);
    if (!row) return make_error(ErrorCode::not_found, "no execution '" + id + "'");
    return make_error(ErrorCode::conflict,
                      "execution " + id + " has already ended (" + std::string(to_string(row->status)) + ")");
}

Result<ExecStatus> Executor::retry(const std::string& id) {
    if (stopping_) return make_error(ErrorCode::unavailable, "luaflowd is shutting down");
    if (find(id)) return make_error(ErrorCode::conflict, "execution " + id + " has not ended yet");
    auto row = store::find_execution(db_, id);
    if (!row) return make_error(ErrorCode::not_found, "no execution '" + id + "'");
    auto def = definition_for(row->workflow, row->definition);
    if (!def)
        return make_error(ErrorCode::conflict,
                          "the definition execution " + id + " ran with cannot be loaded");
    std::map<std::string, const store::ActionRow*> rows;
    for (const auto& a : row->actions)
        rows[a.name] = &a;
    std::vector<ActionStatus> statuses(def->actions.size(), ActionStatus::pending);
    for (std::size_t i = 0; i < def->actions.size(); ++i)
        if (auto it = rows.find(def->actions[i].name); it != rows.end()) statuses[i] = it->second->status;
    std::vector<bool> rerun = actions_to_rerun(*def, statuses);
    if (std::none_of(rerun.begin(), rerun.end(), [](bool b) { return b; }))
        return make_error(ErrorCode::conflict,
                          "execution " + id + " has nothing to retry: every action succeeded");

    auto code = code_for(def);
    if (!code) return code.error();
    auto e = std::make_unique<Execution>();
    e->id = id;
    e->seq = row->seq;
    e->def = def;
    e->code = std::move(code.value());
    e->trigger = freeze(row->trigger);
    e->input = freeze(row->input);
    e->shared = row->shared.is_object() ? freeze(row->shared) : frozen_object();
    e->scheduled_for = row->scheduled_for;
    e->scheduled_tz = row->scheduled_tz;
    e->started_at = row->started_at;
    e->parent = row->parent;
    e->row.id = id; // not kept whole (rows_kept): the report reads the store
    e->row.seq = row->seq;
    e->actions.resize(def->actions.size());
    load_children(*e, row->children);
    for (std::size_t i = 0; i < def->actions.size(); ++i) {
        ActionState& a = e->actions[i];
        a.row.name = def->actions[i].name;
        auto it = rows.find(def->actions[i].name);
        if (it != rows.end()) {
            a.attempts = it->second->attempts;
            a.node = it->second->node;
            a.status = it->second->status;
            if (a.status == ActionStatus::succeeded && it->second->output && !rerun[i]) {
                e->outputs_log->add(def->actions[i].name, *it->second->output);
            }
        }
        a.attempt_base = a.attempts;
        a.held.reset();
        if (rerun[i]) {
            a.status = ActionStatus::pending;
            store::reset_action(db_.write(), e->seq, a.row);
        }
    }
    plan(*e);
    const std::string& workflow = def->id;
    bool start_now = running_per_workflow_[workflow] < def->concurrency && queued_[workflow].empty();
    e->status = start_now ? ExecStatus::running : ExecStatus::queued;
    store::reopen_execution(db_.write(), e->row, e->status);
    log::info_about({workflow, id, {}}, "execution %s of %s: retry requested", id.c_str(), workflow.c_str());
    Execution& ref = *e;
    executions_.emplace(id, std::move(e));
    if (start_now) {
        ++running_per_workflow_[workflow];
        ref.started_at.reset(); // the retried run's clock starts now
        start_execution(ref, true);
        return ExecStatus::running;
    }
    queued_[workflow].push_back(id);
    return ExecStatus::queued;
}

Result<void> Executor::when_finished(const std::string& id, std::function<void(const EndReport&)> fn) {
    if (find(id)) {
        watchers_.on_end(id, std::move(fn));
        return {};
    }
    auto text = inspect_text(db_, id);
    if (!text) return make_error(ErrorCode::not_found, "no execution '" + id + "'");
    db_.after_commit([fn = std::move(fn), report = EndReport(std::move(*text))] { fn(report); });
    return {};
}

std::uint64_t Executor::watch_logs(const std::string& id, std::function<void()> on_lines,
                                   std::function<void()> on_end) {
    if (!find(id)) return 0;
    return watchers_.watch_logs(id, std::move(on_lines), std::move(on_end));
}

void Executor::park(std::unique_ptr<Attempt> attempt) {
    if (!attempt) return;
    // Attempts report from inside their own call stack; they are destroyed on a later turn.
    parked_.push_back(std::move(attempt));
    if (!park_timer_.active()) park_timer_.start(0, [this] { parked_.clear(); });
}

} // namespace luaflow::exec
