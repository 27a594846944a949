#pragma once
// What the executor counts for the metrics (GET /metrics): ends of executions and actions by workflow and
// status, and execution durations, since the daemon started (Prometheus counters start again at a start).
#include "common/histogram.hpp"

#include <cstdint>
#include <map>
#include <string>

namespace luaflow::exec {

struct WorkflowMetrics {
    std::map<std::string, std::uint64_t> executions; // ended, by status
    std::map<std::string, std::uint64_t> actions;    // ended, by status
    // From its start to its end, in seconds (0 for one that ended before it started: cancelled queued).
    Histogram duration{0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14400};
};

struct Metrics {
    std::map<std::string, WorkflowMetrics> workflows; // by workflow id
};

// Actions now: running (an attempt in flight), waiting (for a queue slot or a host's resources) and, of
// the waiting ones, how many per queue.
struct ActionCounts {
    std::uint64_t running = 0;
    std::uint64_t waiting = 0;
    std::map<std::string, std::uint64_t> waiting_by_queue;
};

} // namespace luaflow::exec
