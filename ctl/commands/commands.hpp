#pragma once
// One function per luaflowctl command (group); each returns the exit code (SPEC 6: 0 success, 1 the
// command failed, 2 usage error or invalid input, 3 the daemon cannot be reached).
#include "ctl/client.hpp"

#include <optional>
#include <string>
#include <vector>

namespace luaflow::ctl {

struct Invocation {
    std::string socket;
    bool json = false;
    std::string command;
    std::vector<std::string> args;
};

inline constexpr int kOk = 0;
inline constexpr int kFailed = 1;
inline constexpr int kUsage = 2;
inline constexpr int kUnreachable = 3;

// Prints "luaflowctl: message" and returns the exit code that fits the error.
int report(const Error& error);
int usage_error(const std::string& message);
// Connects, or reports why not (exit 3).
std::optional<Client> connect(const Invocation& inv, int& exit_code);
// Connects, calls, and on success prints the result as JSON when --json; returns the result or nothing
// (exit_code set) on failure.
std::optional<json> call(const Invocation& inv, const std::string& method, const json& params,
                         int& exit_code);
void print_json(const json& value);

int cmd_status(const Invocation& inv);
int cmd_list(const Invocation& inv);
int cmd_show(const Invocation& inv);
int cmd_run(const Invocation& inv);
int cmd_executions(const Invocation& inv);
int cmd_inspect(const Invocation& inv);
int cmd_logs(const Invocation& inv);
int cmd_cancel(const Invocation& inv);
int cmd_retry(const Invocation& inv);
int cmd_enable(const Invocation& inv);
int cmd_disable(const Invocation& inv);
int cmd_reload(const Invocation& inv);
int cmd_validate(const Invocation& inv);
int cmd_test(const Invocation& inv);

// Shared by inspect, run --wait and test: the inspect document for people.
void print_report(const json& report);
// One log object for people: "TIME ACTION#ATTEMPT STREAM LINE".
void print_log_line(const json& line);

} // namespace luaflow::ctl
