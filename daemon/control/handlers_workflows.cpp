// status, list, show, enable/disable, reload, stats.
#include "daemon/control/handlers.hpp"
#include "daemon/store/events.hpp"
#include "daemon/store/executions.hpp"
#include "daemon/store/schedules.hpp"
#include "version.hpp"

#include <uv.h>

namespace luaflow::control {

namespace {

bool effective_enabled(Context& ctx, const registry::WorkflowEntry& e) {
    return store::enabled_override(ctx.db, e.id).value_or(e.def ? e.def->enabled : true);
}

json next_run(Context& ctx, const std::string& id) {
    auto t = ctx.scheduler.next_fire(id);
    return t ? json(format_rfc3339(*t * 1000)) : json();
}

json list_item(Context& ctx, const registry::WorkflowEntry& e) {
    return {{"id", e.id},
            {"enabled", effective_enabled(ctx, e)},
            {"status", e.error ? "error" : "ok"},
            {"error", e.error ? json(e.error->to_string()) : json()},
            {"schedule", ctx.scheduler.describe(e.id)},
            {"next_run", next_run(ctx, e.id)},
            {"last_execution", store::last_execution(ctx.db, e.id)}};
}

json errors_json(const std::vector<scripting::LoadError>& errors) {
    json out = json::array();
    for (const auto& e : errors)
        out.push_back({{"file", e.file}, {"line", e.line}, {"message", e.message}});
    return out;
}

} // namespace

void handle_status(Context& ctx, const json&, const std::shared_ptr<Reply>& reply) {
    exec::Counts c = ctx.executor.counts();
    int workflows = 0;
    for (const auto& [id, e] : ctx.registry.all())
        workflows += e.def ? 1 : 0;
    reply->result({{"version", kVersion},
                   {"uptime_s", (uv_hrtime() - ctx.started_ns) / 1'000'000'000ull},
                   {"workflows", workflows},
                   {"workflow_errors", ctx.registry.error_count()},
                   {"running", c.running},
                   {"queued", c.queued},
                   {"database_bytes", ctx.db.file_bytes()}});
}

void handle_list(Context& ctx, const json&, const std::shared_ptr<Reply>& reply) {
    json out = json::array();
    for (const auto& [id, e] : ctx.registry.all())
        out.push_back(list_item(ctx, e));
    reply->result(out);
}

void handle_show(Context& ctx, const json& params, const std::shared_ptr<Reply>& reply) {
    auto id = string_param(params, "workflow");
    if (!id) return reply->error(id.error());
    const registry::WorkflowEntry* e = ctx.registry.find(*id);
    if (!e) return reply->error(make_error(ErrorCode::not_found, "no workflow '" + *id + "'"));
    json doc = list_item(ctx, *e);
    doc["file"] = e->file;
    exec::Counts c = ctx.executor.counts(e->id);
    doc["running"] = c.running;
    doc["queued"] = c.queued;
    doc["skipped"] = store::skipped_count(ctx.db, e->id);
    doc["events"] = store::workflow_events(ctx.db, e->id, 10);
    if (auto upcoming = ctx.scheduler.upcoming(e->id, 5, std::nullopt)) doc["upcoming"] = upcoming.value();
    if (const auto& def = e->def) {
        json inputs = json::object();
        for (const auto& in : def->inputs)
            inputs[in.name] = {{"type", scripting::to_string(in.type)},
                               {"required", in.required},
                               {"default", in.default_value ? *in.default_value : json()}};
        json actions = json::array();
        for (const auto& a : def->actions) {
            actions.push_back({{"name", a.name},
                               {"kind", scripting::to_string(a.kind)},
                               {"needs", a.needs},
                               {"group", a.group ? json(*a.group) : json()},
                               {"timeout", a.timeout ? json(format_duration(*a.timeout)) : json()},
                               {"retries", a.retries},
                               {"queue", a.queue},
                               {"host", a.host}});
        }
        json triggers = {{"manual", def->triggers.manual},
                         {"webhook", def->triggers.webhook.is_null() ? json(false) : json(true)},
                         {"watch", def->triggers.watch},
                         {"after", def->triggers.after}};
        doc["description"] = def->description;
        doc["triggers"] = triggers;
        doc["input"] = inputs;
        doc["concurrency"] = def->concurrency;
        doc["overlap"] = scripting::to_string(def->overlap);
        doc["timeout"] = def->timeout ? json(format_duration(*def->timeout)) : json();
        doc["actions"] = actions;
    } else {
        doc["description"] = nullptr;
        doc["actions"] = json::array();
    }
    reply->result(doc);
}

void handle_enable(Context& ctx, const json& params, const std::shared_ptr<Reply>& reply, bool enabled) {
    auto id = string_param(params, "workflow");
    if (!id) return reply->error(id.error());
    if (!ctx.registry.find(*id))
        return reply->error(make_error(ErrorCode::not_found, "no workflow '" + *id + "'"));
    store::set_enabled_override(ctx.db.write(), *id, enabled);
    // Enabling catches up what was missed while disabled (the rule's catchup); disabling stops the fires.
    ctx.scheduler.refresh(*id);
    answer(ctx, reply, {{"id", *id}, {"enabled", enabled}});
}

void handle_reload(Context& ctx, const json&, const std::shared_ptr<Reply>& reply) {
    ctx.reload([&ctx, reply](const registry::ReloadReport& r) {
        answer(ctx, reply, {{"workflows", r.workflows}, {"errors", errors_json(r.errors)}});
    });
}

void handle_stats(Context& ctx, const json&, const std::shared_ptr<Reply>& reply) {
    exec::Counts c = ctx.executor.counts();
    reply->result({{"commits", ctx.db.commits()},
                   {"running", c.running},
                   {"queued", c.queued},
                   {"lua_states", ctx.registry.codes().size()},
                   {"synchronous", ctx.db.synchronous()},
                   {"schedule_lateness", ctx.scheduler.lateness().summary()}});
}

void handle_next(Context& ctx, const json& params, const std::shared_ptr<Reply>& reply) {
    auto id = string_param(params, "workflow");
    if (!id) return reply->error(id.error());
    int n = 5;
    if (auto it = params.find("n"); it != params.end() && !it->is_null()) {
        if (!it->is_number_integer() || it->get<long long>() < 1 || it->get<long long>() > 1000)
            return reply->error(
                make_error(ErrorCode::invalid, "parameter 'n' must be an integer from 1 to 1000"));
        n = it->get<int>();
    }
    std::optional<UnixSeconds> after;
    if (auto it = params.find("after"); it != params.end() && !it->is_null()) {
        auto t = it->is_string() ? parse_rfc3339(it->get<std::string>()) : std::nullopt;
        if (!t)
            return reply->error(make_error(ErrorCode::invalid,
                                           "parameter 'after' must be an RFC 3339 time, got " + it->dump()));
        std::int64_t ms = t.value(); // not *t: GCC 12 at -Os (MinSizeRel) thinks it may be uninitialised
        after = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    }
    auto times = ctx.scheduler.upcoming(*id, n, after);
    if (!times) return reply->error(times.error());
    reply->result(times.value());
}

} // namespace luaflow::control
