// notify_test: one message through a notifier, now, outside the outbox (luaflowctl notify test).
#include "daemon/control/handlers.hpp"

namespace luaflow::control {

void handle_notify_test(Context& ctx, const json& params, const std::shared_ptr<Reply>& reply) {
    auto notifier = string_param(params, "notifier");
    if (!notifier) return reply->error(notifier.error());
    if (!ctx.outbox.has_notifier(*notifier))
        return reply->error(make_error(ErrorCode::not_found, ctx.outbox.no_such_notifier(*notifier)));
    ctx.outbox.send_test(*notifier, [reply, name = *notifier](Result<void> r) {
        if (!r)
            return reply->error(
                make_error(ErrorCode::unavailable, "notifier " + name + ": " + r.error().message));
        reply->result({{"notifier", name}, {"sent", true}});
    });
}

} // namespace luaflow::control
