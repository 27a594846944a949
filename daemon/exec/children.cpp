// Child executions (workflows.run, SPEC 3). A child is an execution of its own with trigger `child` and
// `parent` set; its parent action does not finish before it: the action's result waits until every
// child it started has ended. A failed attempt cancels its unfinished children, as a subprocess's
// group goes with it. A retried attempt (after a failure or a restart) gets back, call by call, the
// children an earlier attempt started, unless they failed: so a parent that waited on a child across
// a restart waits on the same child again instead of starting a second one.
#include "common/log.hpp"
#include "daemon/exec/executor.hpp"
#include "daemon/exec/input.hpp"
#include "daemon/store/executions.hpp"
#include "daemon/store/logs.hpp"

namespace luaflow::exec {

namespace {

bool reusable(ExecStatus s) {
    return s == ExecStatus::queued || s == ExecStatus::running || s == ExecStatus::succeeded;
}

} // namespace

std::size_t Executor::unfinished_children(const ActionState& a) {
    std::size_t n = 0;
    for (const auto& c : a.children)
        if (!c.ended) ++n;
    return n;
}

int Executor::child_depth(const Execution& e) {
    int depth = 0;
    for (const Execution* x = &e; x && x->parent && depth <= kMaxChildDepth; x = find(*x->parent))
        ++depth;
    return depth;
}

void Executor::load_children(Execution& e, const std::vector<store::ChildRow>& rows) {
    for (const store::ChildRow& c : rows) {
        auto idx = e.def->action_index(c.action);
        if (!idx) continue;
        ActionState::Child child{c.id, c.workflow, c.input, c.attempt, c.call, std::nullopt};
        if (c.status != ExecStatus::queued && c.status != ExecStatus::running) child.ended = c.status;
        e.actions[*idx].children.push_back(std::move(child));
    }
}

Result<std::string> Executor::start_child(const scripting::Task& task, const std::string& workflow,
                                          const json& input) {
    const scripting::TaskLabel& label = task.label();
    Execution* e = find(label.execution);
    if (!e || e->status != ExecStatus::running)
        return make_error(ErrorCode::conflict, "the calling execution is not running");
    auto idx = e->def->action_index(label.action);
    if (!idx) return make_error(ErrorCode::internal, "no action '" + label.action + "'");
    ActionState& a = e->actions[*idx];
    if (a.status != ActionStatus::running || a.attempts != label.attempt || !a.attempt)
        return make_error(ErrorCode::conflict, "only an action's run function may start child executions "
                                               "(not its when)");
    if (stopping_) return make_error(ErrorCode::unavailable, "luaflowd is shutting down");
    int call = ++a.child_calls;

    // A retried attempt makes the same calls again: the same call of an earlier attempt (since the last
    // `luaflowctl retry`) with the same workflow and input hands back its child unless that failed.
    const registry::WorkflowEntry* entry = registry_.find(workflow);
    if (entry && entry->def) {
        if (auto checked = check_input(*entry->def, input, json::object())) {
            for (auto it = a.children.rbegin(); it != a.children.rend(); ++it) {
                if (it->call != call || it->attempt <= a.attempt_base || it->attempt >= a.attempts) continue;
                if (it->workflow != workflow || it->input != *checked) continue;
                if (it->ended && !reusable(*it->ended)) break;
                services_.job_log(e->id, label.action, label.attempt, "log",
                                  "workflows.run('" + workflow + "'): the same call of attempt " +
                                      std::to_string(it->attempt) + " started child " + it->id +
                                      (it->ended ? " (" + std::string(to_string(*it->ended)) + ")" : "") +
                                      "; waiting on it instead of starting another");
                return it->id;
            }
        }
    }

    if (child_depth(*e) >= kMaxChildDepth)
        return make_error(ErrorCode::conflict, "child executions nest deeper than " +
                                                   std::to_string(kMaxChildDepth) + " (" + e->def->id +
                                                   " keeps starting workflows that start workflows)");
    // A child queued behind its own ancestor could never start while the ancestor waits on it.
    if (busy(workflow)) {
        for (const Execution* x = e; x; x = x->parent ? find(*x->parent) : nullptr) {
            if (x->def->id != workflow) continue;
            return make_error(ErrorCode::conflict,
                              "workflow '" + workflow + "' is at its concurrency limit (" +
                                  std::to_string(entry->def->concurrency) + ") held by execution " + x->id +
                                  ", which is this child's own " + (x == e ? "parent" : "ancestor") +
                                  ": the child could never start");
        }
    }

    SubmitRequest r;
    r.workflow = workflow;
    r.input = input;
    r.trigger = {{"type", "child"},
                 {"parent", e->id},
                 {"action", label.action},
                 {"attempt", label.attempt},
                 {"call", call}};
    r.parent = e->id;
    r.queue_even_if_skip = true; // a child is asked for by its parent: it queues rather than being dropped
    auto id = submit(r);
    if (!id) return id.error();
    // submit() keeps executions by pointer, so `a` is still this action's state.
    const Execution* child = find(*id);
    a.children.push_back({*id, workflow, child ? *child->input : input, label.attempt, call, std::nullopt});
    e->has_lists = true;
    services_.job_log(e->id, label.action, label.attempt, "log",
                      "workflows.run('" + workflow + "'): started child " + *id);
    return *id;
}

Result<void> Executor::wait_child(const std::string& child, std::function<void(const json&)> fn) {
    return when_finished(child, [fn = std::move(fn)](const EndReport& report) { fn(report.doc()); });
}

bool Executor::hold_for_children(Execution& e, std::size_t i, AttemptResult& result) {
    ActionState& a = e.actions[i];
    std::size_t n = unfinished_children(a);
    if (n == 0) return false;
    bool ok = result.kind == AttemptResult::Kind::succeeded;
    a.held = std::move(result);
    services_.job_log(e.id, e.def->actions[i].name, a.attempts, "log",
                      std::string(ok ? "waiting for " : "cancelling ") + std::to_string(n) +
                          " unfinished child execution(s) before the action ends");
    if (!ok) cancel_children(e, i, "its parent action '" + e.def->actions[i].name + "' failed");
    return true;
}

void Executor::cancel_children(Execution& e, std::size_t i, const std::string& why) {
    std::vector<std::string> ids;
    for (const auto& c : e.actions[i].children)
        if (!c.ended) ids.push_back(c.id);
    for (const std::string& id : ids)
        if (Execution* c = find(id)) stop_execution(*c, ExecStatus::cancelled, "cancelled: " + why);
}

void Executor::on_child_ended(const std::string& parent, const std::string& child, ExecStatus status) {
    Execution* e = find(parent);
    if (!e) return;
    for (std::size_t i = 0; i < e->actions.size(); ++i) {
        ActionState& a = e->actions[i];
        bool found = false;
        for (auto& c : a.children)
            if (c.id == child) {
                c.ended = status;
                found = true;
            }
        if (!found) continue;
        if (!a.held || unfinished_children(a) > 0 || a.status != ActionStatus::running) return;
        AttemptResult r = std::move(*a.held);
        a.held.reset();
        if (a.held_interrupted) {
            a.held_interrupted = false;
            finish_action(*e, i, ActionStatus::failed, r, ActionEvent::interrupted);
            advance(*e);
            return;
        }
        settle_attempt(*e, i, std::move(r)); // may end the execution: nothing touches `e` after
        return;
    }
}

} // namespace luaflow::exec
