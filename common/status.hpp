#pragma once
// Execution and action statuses, spelled exactly as SPEC's JSON strings, with one to_string/parse pair.
#include <optional>
#include <string_view>

namespace luaflow {

enum class ExecStatus { queued, running, succeeded, failed, cancelled, timed_out };
enum class ActionStatus { pending, running, succeeded, failed, skipped, cancelled, timed_out };

const char* to_string(ExecStatus s);
const char* to_string(ActionStatus s);
std::optional<ExecStatus> parse_exec_status(std::string_view s);
std::optional<ActionStatus> parse_action_status(std::string_view s);

inline bool is_finished(ExecStatus s) {
    return s != ExecStatus::queued && s != ExecStatus::running;
}
inline bool is_finished(ActionStatus s) {
    return s != ActionStatus::pending && s != ActionStatus::running;
}

} // namespace luaflow
