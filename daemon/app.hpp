#pragma once
// Wires the daemon's parts together (STYLE 3: main wires, it does nothing else).
#include "daemon/config/config.hpp"
#include "daemon/options.hpp"
#include "scripting/lua_state.hpp"
#include "stdlib/services.hpp"

#include <cstdint>
#include <functional>
#include <string>

namespace luaflow {

// The effective config: the file's, with the flags on top.
Result<config::Config> effective_config(const Options& options);

// Sandbox options for a workflow's state, with the standard library installed over `services`.
scripting::SandboxOptions sandbox_options(const config::Config& config, stdlib::Services& services,
                                          const std::string& workflow);

// `luaflowd --check`: prints each problem as FILE:LINE: message; returns the exit code.
int check_all(const Options& options);

// Runs the daemon until SIGTERM/SIGINT; returns the exit code. `started_ns`: when the process
// started, on the wall clock (nanoseconds since the epoch).
int run_daemon(const Options& options, std::int64_t started_ns);

} // namespace luaflow
