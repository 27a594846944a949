#pragma once
// The control socket's methods (common/protocol.hpp), one function per command group.
#include "daemon/control/socket_server.hpp"
#include "daemon/exec/submit.hpp"
#include "daemon/registry/registry.hpp"
#include "daemon/schedule/scheduler.hpp"
#include "daemon/store/db.hpp"
#include "daemon/store/reader.hpp"
#include "notifiers/outbox.hpp"

#include <functional>

namespace luaflow::control {

struct Context {
    uv_loop_t* loop;
    store::Db& db;
    store::Reader& reader; // large reads (inspect), off the loop
    registry::Registry& registry;
    exec::ExecutionControl& executor;
    schedule::Scheduler& scheduler;
    notifiers::Outbox& outbox;
    std::uint64_t started_ns = 0; // uv_hrtime() at start, for uptime
    // SIGHUP's work: config and workflows; the report comes when the workflows directory has been read.
    std::function<void(registry::Registry::ReloadDone)> reload;
};

Handler make_handler(Context& ctx);

// Per group (handlers_*.cpp).
void handle_status(Context& ctx, const json& params, const std::shared_ptr<Reply>& reply);
void handle_list(Context& ctx, const json& params, const std::shared_ptr<Reply>& reply);
void handle_show(Context& ctx, const json& params, const std::shared_ptr<Reply>& reply);
void handle_run(Context& ctx, const json& params, const std::shared_ptr<Reply>& reply);
// `run` started by another door (the HTTP API: {"type":"api"}): the same checks and answer. With
// `submitted`, that gets the new execution's id in the turn it is submitted, instead of `reply` getting
// {"id"} after the commit, so that a wait on its end is in place before it can end (a quick execution
// ends in that very turn); errors still go to `reply`.
void run_execution(Context& ctx, const json& params, json trigger, const std::shared_ptr<Reply>& reply,
                   const std::function<void(const std::string& id)>& submitted = nullptr);
void handle_executions(Context& ctx, const json& params, const std::shared_ptr<Reply>& reply);
void handle_inspect(Context& ctx, const json& params, const std::shared_ptr<Reply>& reply);
void handle_wait(Context& ctx, const json& params, const std::shared_ptr<Reply>& reply);
void handle_logs(Context& ctx, const json& params, const std::shared_ptr<Reply>& reply);
void handle_cancel(Context& ctx, const json& params, const std::shared_ptr<Reply>& reply);
void handle_retry(Context& ctx, const json& params, const std::shared_ptr<Reply>& reply);
void handle_enable(Context& ctx, const json& params, const std::shared_ptr<Reply>& reply, bool enabled);
void handle_reload(Context& ctx, const json& params, const std::shared_ptr<Reply>& reply);
void handle_kv_get(Context& ctx, const json& params, const std::shared_ptr<Reply>& reply);
void handle_kv_set(Context& ctx, const json& params, const std::shared_ptr<Reply>& reply);
void handle_kv_delete(Context& ctx, const json& params, const std::shared_ptr<Reply>& reply);
void handle_kv_list(Context& ctx, const json& params, const std::shared_ptr<Reply>& reply);
void handle_next(Context& ctx, const json& params, const std::shared_ptr<Reply>& reply);
void handle_stats(Context& ctx, const json& params, const std::shared_ptr<Reply>& reply);
void handle_notify_test(Context& ctx, const json& params, const std::shared_ptr<Reply>& reply);

// A string parameter, or an `invalid` error naming it.
Result<std::string> string_param(const json& params, const char* name);
// Answers after the turn's changes are committed (what the answer reports is then durable).
void answer(Context& ctx, const std::shared_ptr<Reply>& reply, json value);
void answer_error(Context& ctx, const std::shared_ptr<Reply>& reply, Error error);

} // namespace luaflow::control
