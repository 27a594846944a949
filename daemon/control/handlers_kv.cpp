// kv_get, kv_set, kv_delete, kv_list: the kv store of a workflow (params.workflow) or the global one (none).
#include "daemon/control/handlers.hpp"
#include "daemon/store/kv.hpp"

namespace luaflow::control {

namespace {

// The scope named by params: a known workflow's id, or "" (global) without "workflow".
Result<std::string> scope_param(Context& ctx, const json& params) {
    auto it = params.find("workflow");
    if (it == params.end() || it->is_null()) return std::string();
    auto id = string_param(params, "workflow");
    if (!id) return id.error();
    if (!ctx.registry.find(*id)) return make_error(ErrorCode::not_found, "no workflow '" + *id + "'");
    return *id;
}

std::string scope_name(const std::string& scope) {
    return scope.empty() ? "kv.global" : "the kv of " + scope;
}

} // namespace

void handle_kv_get(Context& ctx, const json& params, const std::shared_ptr<Reply>& reply) {
    auto scope = scope_param(ctx, params);
    if (!scope) return reply->error(scope.error());
    auto key = string_param(params, "key");
    if (!key) return reply->error(key.error());
    auto value = store::kv_get(ctx.db, *scope, *key);
    if (!value)
        return reply->error(
            make_error(ErrorCode::not_found, "no key '" + *key + "' in " + scope_name(*scope)));
    reply->result({{"key", *key}, {"value", *value}});
}

void handle_kv_set(Context& ctx, const json& params, const std::shared_ptr<Reply>& reply) {
    auto scope = scope_param(ctx, params);
    if (!scope) return reply->error(scope.error());
    auto key = string_param(params, "key");
    if (!key) return reply->error(key.error());
    auto it = params.find("value");
    if (it == params.end() || it->is_null())
        return reply->error(
            make_error(ErrorCode::invalid, "parameter 'value' must be a JSON value other than null"));
    store::kv_set(ctx.db.write(), *scope, *key, *it);
    answer(ctx, reply, {{"key", *key}, {"value", *it}});
}

void handle_kv_delete(Context& ctx, const json& params, const std::shared_ptr<Reply>& reply) {
    auto scope = scope_param(ctx, params);
    if (!scope) return reply->error(scope.error());
    auto key = string_param(params, "key");
    if (!key) return reply->error(key.error());
    if (!store::kv_delete(ctx.db.write(), *scope, *key))
        return reply->error(
            make_error(ErrorCode::not_found, "no key '" + *key + "' in " + scope_name(*scope)));
    answer(ctx, reply, {{"key", *key}, {"deleted", true}});
}

void handle_kv_list(Context& ctx, const json& params, const std::shared_ptr<Reply>& reply) {
    auto scope = scope_param(ctx, params);
    if (!scope) return reply->error(scope.error());
    reply->result(store::kv_list(ctx.db, *scope));
}

} // namespace luaflow::control
