#pragma once
// An execution's log sent over the control socket in bounded pages (logs, SPEC 6). The next page is read
// from the store only once the last one has been written to the socket, so one client never keeps the
// loop long, and what waits for a slow reader stays one page whatever the size of the log. With follow,
// new lines go out as they are committed, until the execution ends.
#include "daemon/control/handlers.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace luaflow::control {

struct LogStreamRequest {
    std::string execution;
    std::optional<std::string> action;
    std::optional<std::uint64_t> limit; // at most this many lines; the answer says when it cut some
    bool follow = false;                // then new lines as they come, until the execution ends
    // Lines as event lines, then the result {"lines": N, "limited": bool}; else one result array (the
    // protocol's older answer, for clients that do not ask for a stream).
    bool as_events = true;
};

void stream_logs(Context& ctx, const std::shared_ptr<Reply>& reply, LogStreamRequest request);

} // namespace luaflow::control
