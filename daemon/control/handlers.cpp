#include "daemon/control/handlers.hpp"

#include <optional>
#include <unordered_map>

namespace luaflow::control {

Result<std::string> string_param(const json& params, const char* name) {
    auto it = params.find(name);
    if (it == params.end() || !it->is_string() || it->get<std::string>().empty())
        return make_error(ErrorCode::invalid,
                          std::string("parameter '") + name + "' must be a non-empty string");
    return it->get<std::string>();
}

std::optional<Error> check_param_types(const json& params) {
    // What each parameter of the protocol is (luaflowctl(1)); a wrong type is refused before any handler
    // acts on the request, instead of being ignored or throwing from json::value.
    static const std::unordered_map<std::string, json::value_t> kTypes = {
        {"workflow", json::value_t::string},      {"execution", json::value_t::string},
        {"action", json::value_t::string},        {"status", json::value_t::string},
        {"key", json::value_t::string},           {"wait", json::value_t::boolean},
        {"follow", json::value_t::boolean},       {"input", json::value_t::object},
        {"input_strings", json::value_t::object}, {"limit", json::value_t::number_unsigned},
        {"n", json::value_t::number_unsigned},    {"stream", json::value_t::boolean},
    };
    for (auto it = params.begin(); it != params.end(); ++it) {
        auto want = kTypes.find(it.key());
        if (want == kTypes.end()) continue;
        const json& v = it.value();
        // null stands for "not given", except where json::value would read it as the type (booleans).
        bool ok = want->second == json::value_t::boolean           ? v.is_boolean()
                  : v.is_null()                                    ? true
                  : want->second == json::value_t::number_unsigned ? v.is_number_unsigned()
                                                                   : v.type() == want->second;
        if (!ok) {
            const char* what = want->second == json::value_t::string            ? "a string"
                               : want->second == json::value_t::boolean         ? "a boolean"
                               : want->second == json::value_t::number_unsigned ? "a number >= 0"
                                                                                : "an object";
            return make_error(ErrorCode::invalid,
                              "parameter '" + it.key() + "' must be " + what + ", not " + v.type_name());
        }
    }
    return std::nullopt;
}

void answer(Context& ctx, const std::shared_ptr<Reply>& reply, json value) {
    ctx.db.after_commit([reply, value = std::move(value)] { reply->result(value); });
}

void answer_error(Context& ctx, const std::shared_ptr<Reply>& reply, Error error) {
    ctx.db.after_commit([reply, error = std::move(error)] { reply->error(error); });
}

Handler make_handler(Context& ctx) {
    using Fn = void (*)(Context&, const json&, const std::shared_ptr<Reply>&);
    static const std::unordered_map<std::string, Fn> methods = {
        {"status", handle_status},
        {"list", handle_list},
        {"show", handle_show},
        {"run", handle_run},
        {"executions", handle_executions},
        {"inspect", handle_inspect},
        {"wait", handle_wait},
        {"logs", handle_logs},
        {"cancel", handle_cancel},
        {"retry", handle_retry},
        {"enable",
         [](Context& c, const json& p, const std::shared_ptr<Reply>& r) { handle_enable(c, p, r, true); }},
        {"disable",
         [](Context& c, const json& p, const std::shared_ptr<Reply>& r) { handle_enable(c, p, r, false); }},
        {"reload", handle_reload},
        {"next", handle_next},
        {"kv_get", handle_kv_get},
        {"kv_set", handle_kv_set},
        {"kv_delete", handle_kv_delete},
        {"kv_list", handle_kv_list},
        {"stats", handle_stats},
        {"notify_test", handle_notify_test},
    };
    return [&ctx](const std::string& method, const json& params, std::shared_ptr<Reply> reply) {
        auto it = methods.find(method);
        if (it == methods.end()) {
            reply->error(make_error(ErrorCode::invalid, "unknown method '" + method + "'"));
            return;
        }
        if (auto bad = check_param_types(params)) {
            reply->error(*bad);
            return;
        }
        it->second(ctx, params, reply);
    };
}

} // namespace luaflow::control
