#pragma once
// One function per luaflowctl command, one file per command group (ctl/commands/<group>.cpp), and the
// helpers they share. Each command returns its exit code (SPEC 6).
#include "ctl/client.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace luaflow::ctl {

inline constexpr int kOk = 0;          // success
inline constexpr int kFailed = 1;      // the command failed, or the execution did not succeed
inline constexpr int kUsage = 2;       // usage error or invalid input
inline constexpr int kUnreachable = 3; // the daemon cannot be reached

struct Invocation {
    std::string socket; // --socket, empty when not given
    bool json = false;  // --json
    std::string command;
    std::vector<std::string> args; // the words after the command, global options removed
};

// What a command accepts: the usage line shown on errors and --help, its options and positionals.
struct Syntax {
    const char* usage;                      // e.g. "logs EXEC [--action NAME] [--follow]"
    std::vector<std::string> value_options; // take a value: "--action NAME" or "--action=NAME"
    std::vector<std::string> flags;         // take none: "--follow"
    std::size_t min_positional = 0;
    std::size_t max_positional = 0;
};

// A command's words, parsed by its Syntax.
struct Args {
    std::vector<std::string> positional;
    std::vector<std::pair<std::string, std::string>> options; // in command-line order
    std::vector<std::string> flags;

    bool has(const std::string& flag) const;
    // The last value given for `option` (a later one wins), or nothing.
    std::optional<std::string> value(const std::string& option) const;
};

// Parses inv.args; on --help prints the usage (exit 0), on a mistake prints a usage error (exit 2).
// Returns nothing in both cases, with `exit_code` set.
std::optional<Args> parse_args(const Invocation& inv, const Syntax& syntax, int& exit_code);

// One request on a new connection. On failure, reports it (stderr), sets `exit_code`, returns nothing.
std::optional<json> request(const Invocation& inv, const std::string& method, const json& params,
                            int& exit_code);
// Prints "luaflowctl: message" and the usage line to stderr; returns kUsage.
int usage_error(const std::string& message, const char* usage = nullptr);
// Prints "luaflowctl: message" to stderr and returns the exit code that fits the failure.
int report(const CallError& error);
// Prints one JSON document on one line (--json output): exactly the daemon's result.
void print_json(const json& value);
// "FILE:LINE: message" per load error ("FILE: message" when the line is unknown).
void print_load_errors(const json& errors);
// A JSON object from text, or a usage error naming `what` (exit 2).
std::optional<json> parse_json_object(const std::string& text, const std::string& what, int& exit_code);

// The config file validate and test read (SPEC 6): -c/--config FILE, else the system's when there is
// one (hosts, queues, sandbox paths and secrets as the daemon has them); null without.
json config_file_option(const Args& args);

// An execution's input as run and test take it (input.cpp).
struct InputArgs {
    json input = json::object();   // --input JSON or --input-file FILE ("-": standard input)
    json strings = json::object(); // -i KEY=VALUE, raw: the engine converts them to the declared types
};
// The options that give it, for a Syntax's value_options (a function: Syntaxes are globals too).
std::vector<std::string> input_options();
// Reads them from `args`; on a mistake prints a usage error (with `usage`) and sets exit_code.
std::optional<InputArgs> parse_input(const Invocation& inv, const Args& args, const char* usage,
                                     int& exit_code);

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
int cmd_next(const Invocation& inv);
int cmd_kv(const Invocation& inv);
int cmd_reload(const Invocation& inv);
int cmd_notify(const Invocation& inv);
int cmd_validate(const Invocation& inv);
int cmd_test(const Invocation& inv);

// The inspect document for people (inspect, run --wait, test): header, actions table, outputs.
void print_report(const json& report);
// Events ({"time","event","message"}) under a title, one line each; nothing when there are none.
void print_events(const char* title, const json& events);
// One streamed log object as it comes: JSON Lines with --json, else for people; flushed at once.
void print_log_event(const Invocation& inv, const json& line);
// One log object for people: "TIME ACTION#ATTEMPT STREAM LINE".
void print_log_line(const json& line);
// A workflow's schedule for people (list, show): its RRULE or cron text and zone, "; " between rules.
std::string schedule_text(const json& schedule);
// 0 when the report's execution succeeded, else 1 (run --wait and --follow).
int exit_for_report(const json& report);

} // namespace luaflow::ctl
