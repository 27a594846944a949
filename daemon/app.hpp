#pragma once
// Wires the daemon's parts together (STYLE 3: main wires, it does nothing else).
#include "daemon/config/config.hpp"
#include "daemon/options.hpp"

#include <cstdint>

namespace luaflow {

// The effective config: the file's, with the flags on top.
Result<config::Config> effective_config(const Options& options);

// `luaflowd --check`: prints each problem as FILE:LINE: message; returns the exit code.
int check_all(const Options& options);

// Runs the daemon until SIGTERM/SIGINT; returns the exit code. `started_ns`: when the process
// started, on the wall clock (nanoseconds since the epoch).
int run_daemon(const Options& options, std::int64_t started_ns);

} // namespace luaflow
