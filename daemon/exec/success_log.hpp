#pragma once
// Which successful ends go to the daemon's log. Every end is in the store (inspect, list, /metrics); the
// log is for people and journald: a workflow behind a webhook at thousands of runs a second would write as
// many lines, which journald's default rate limit (10 000 in 30 s per service) drops after three seconds
// of them, and which cost it a core on a small box. So a workflow's successes are logged at most once a
// second, the line saying how many were not; every other end (failed, timed out, cancelled) is logged.
#include "common/time_format.hpp"

#include <cstdint>
#include <string>
#include <unordered_map>

namespace luaflow::exec {

class SuccessLog {
  public:
    struct Verdict {
        bool log = true;
        std::uint64_t unlogged = 0; // successes of the workflow since its last logged one, not logged
    };
    static constexpr UnixMillis kInterval = 1000;

    // An execution of `workflow` succeeded at `now`.
    Verdict on_success(const std::string& workflow, UnixMillis now);

  private:
    struct Entry {
        UnixMillis logged_at = 0;
        std::uint64_t unlogged = 0;
        bool logged = false;
    };
    std::unordered_map<std::string, Entry> by_workflow_;
};

} // namespace luaflow::exec
