#include "common/status.hpp"

#include <array>
#include <utility>

namespace luaflow {

namespace {
constexpr std::array<std::pair<ExecStatus, const char*>, 6> kExec{{
    {ExecStatus::queued, "queued"},
    {ExecStatus::running, "running"},
    {ExecStatus::succeeded, "succeeded"},
    {ExecStatus::failed, "failed"},
    {ExecStatus::cancelled, "cancelled"},
    {ExecStatus::timed_out, "timed_out"},
}};
constexpr std::array<std::pair<ActionStatus, const char*>, 7> kAction{{
    {ActionStatus::pending, "pending"},
    {ActionStatus::running, "running"},
    {ActionStatus::succeeded, "succeeded"},
    {ActionStatus::failed, "failed"},
    {ActionStatus::skipped, "skipped"},
    {ActionStatus::cancelled, "cancelled"},
    {ActionStatus::timed_out, "timed_out"},
}};
} // namespace

const char* to_string(ExecStatus s) {
    for (auto& [k, v] : kExec)
        if (k == s) return v;
    return "failed";
}

const char* to_string(ActionStatus s) {
    for (auto& [k, v] : kAction)
        if (k == s) return v;
    return "failed";
}

std::optional<ExecStatus> parse_exec_status(std::string_view s) {
    for (auto& [k, v] : kExec)
        if (s == v) return k;
    return std::nullopt;
}

std::optional<ActionStatus> parse_action_status(std::string_view s) {
    for (auto& [k, v] : kAction)
        if (s == v) return k;
    return std::nullopt;
}

} // namespace luaflow
