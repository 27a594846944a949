// run, executions, inspect, wait, logs, cancel, retry.
#include "daemon/control/handlers.hpp"
#include "daemon/control/log_stream.hpp"
#include "daemon/exec/report.hpp"
#include "daemon/store/executions.hpp"
#include "daemon/store/logs.hpp"

#include <algorithm>

namespace luaflow::control {

namespace {

// Resolves "execution" (an id or a unique prefix) or answers the error and returns nothing.
std::optional<std::string> execution_param(Context& ctx, const json& params,
                                           const std::shared_ptr<Reply>& reply) {
    auto raw = string_param(params, "execution");
    if (!raw) {
        reply->error(raw.error());
        return std::nullopt;
    }
    auto id = store::resolve_execution(ctx.db, *raw);
    if (!id) {
        reply->error(id.error());
        return std::nullopt;
    }
    return *id;
}

} // namespace

void handle_run(Context& ctx, const json& params, const std::shared_ptr<Reply>& reply) {
    run_execution(ctx, params, {{"type", "manual"}}, reply);
}

void run_execution(Context& ctx, const json& params, json trigger, const std::shared_ptr<Reply>& reply,
                   const std::function<void(const std::string& id)>& submitted) {
    auto workflow = string_param(params, "workflow");
    if (!workflow) return reply->error(workflow.error());
    exec::SubmitRequest req;
    req.workflow = *workflow;
    req.trigger = std::move(trigger);
    req.input = params.value("input", json::object());
    req.input_strings = params.value("input_strings", json::object());
    if (!req.input.is_object())
        return reply->error(make_error(ErrorCode::invalid, "input must be a JSON object"));
    auto id = ctx.executor.submit(req);
    if (!id) return answer_error(ctx, reply, id.error());
    if (submitted) return submitted(*id);
    if (!params.value("wait", false)) return answer(ctx, reply, {{"id", *id}});
    auto waiting = ctx.executor.when_finished(
        *id, [reply](const exec::EndReport& report) { reply->result_text(report.text()); });
    if (!waiting) answer_error(ctx, reply, waiting.error());
}

void handle_executions(Context& ctx, const json& params, const std::shared_ptr<Reply>& reply) {
    store::ExecutionFilter f;
    if (auto w = params.find("workflow"); w != params.end() && w->is_string())
        f.workflow = w->get<std::string>();
    if (auto s = params.find("status"); s != params.end() && s->is_string()) {
        f.status = parse_exec_status(s->get<std::string>());
        if (!f.status)
            return reply->error(make_error(ErrorCode::invalid, "unknown status '" + s->get<std::string>() +
                                                                   "' (queued, running, succeeded, failed, "
                                                                   "cancelled, timed_out)"));
    }
    if (auto l = params.find("limit"); l != params.end()) {
        if (!l->is_number_integer() || l->get<int>() < 1)
            return reply->error(make_error(ErrorCode::invalid, "limit must be a positive integer"));
        f.limit = l->get<int>();
    }
    json list = store::list_executions(ctx.db, f);
    // A name that is neither a workflow now nor one with executions in the store is a mistake, not an
    // empty list (a deleted workflow's executions stay listable).
    if (f.workflow && list.empty() && !ctx.registry.find(*f.workflow) &&
        store::last_execution(ctx.db, *f.workflow).is_null())
        return reply->error(make_error(ErrorCode::not_found, "no workflow '" + *f.workflow + "'"));
    reply->result(list);
}

void handle_inspect(Context& ctx, const json& params, const std::shared_ptr<Reply>& reply) {
    auto id = execution_param(ctx, params, reply);
    if (!id) return;
    // Read and serialised on the pool (a 10 000-action document is 60 ms of work), from a snapshot
    // taken after this turn's commit: what a request before it on the connection changed is in it.
    ctx.db.after_commit([&reader = ctx.reader, id = *id, reply] {
        reader.run(
            [id](store::Db& db) -> Result<std::string> {
                auto text = exec::inspect_text(db, id);
                if (!text) return make_error(ErrorCode::not_found, "no execution '" + id + "'");
                return std::move(*text);
            },
            [reply](Result<std::string> text) {
                if (!text) return reply->error(text.error());
                reply->result_text(std::move(*text));
            });
    });
}

void handle_wait(Context& ctx, const json& params, const std::shared_ptr<Reply>& reply) {
    auto id = execution_param(ctx, params, reply);
    if (!id) return;
    auto r = ctx.executor.when_finished(
        *id, [reply](const exec::EndReport& report) { reply->result_text(report.text()); });
    if (!r) reply->error(r.error());
}

void handle_logs(Context& ctx, const json& params, const std::shared_ptr<Reply>& reply) {
    auto id = execution_param(ctx, params, reply);
    if (!id) return;
    std::optional<std::string> action;
    if (auto a = params.find("action"); a != params.end() && a->is_string()) action = a->get<std::string>();
    LogStreamRequest request;
    request.execution = *id;
    request.action = std::move(action);
    request.follow = params.value("follow", false);
    request.as_events = request.follow || params.value("stream", false);
    if (auto l = params.find("limit"); l != params.end() && !l->is_null()) {
        if (l->get<std::uint64_t>() < 1)
            return reply->error(make_error(ErrorCode::invalid, "limit must be a positive integer"));
        // The array answer has no place to say that lines were left out.
        if (!request.as_events)
            return reply->error(
                make_error(ErrorCode::invalid, "limit needs \"stream\": true or \"follow\": true"));
        request.limit = l->get<std::uint64_t>();
    }
    if (!request.action) return stream_logs(ctx, reply, std::move(request));
    // The action is looked up once this turn is committed: a new execution's action rows are written by
    // then (Executor::write_unwritten_rows), and a run sent just before on this connection is in.
    ctx.db.after_commit([&ctx, reply, request = std::move(request)]() mutable {
        auto row = store::find_execution(ctx.db, request.execution);
        bool known = row && std::any_of(row->actions.begin(), row->actions.end(),
                                        [&](const store::ActionRow& r) { return r.name == *request.action; });
        if (!known)
            return reply->error(make_error(ErrorCode::not_found, "no action '" + *request.action +
                                                                     "' in execution " + request.execution));
        stream_logs(ctx, reply, std::move(request));
    });
}

void handle_cancel(Context& ctx, const json& params, const std::shared_ptr<Reply>& reply) {
    auto id = execution_param(ctx, params, reply);
    if (!id) return;
    auto r = ctx.executor.cancel(*id);
    if (!r) return answer_error(ctx, reply, r.error());
    answer(ctx, reply, {{"id", *id}, {"status", to_string(*r)}});
}

void handle_retry(Context& ctx, const json& params, const std::shared_ptr<Reply>& reply) {
    auto id = execution_param(ctx, params, reply);
    if (!id) return;
    auto r = ctx.executor.retry(*id);
    if (!r) return answer_error(ctx, reply, r.error());
    answer(ctx, reply, {{"id", *id}, {"status", to_string(*r)}});
}

} // namespace luaflow::control
