#pragma once
// Who waits on an execution: `wait`, `run --wait` and parent actions for its end, `logs --follow` for
// its new lines. They hear of a change after the commit that made it durable.
#include "daemon/exec/report.hpp"
#include "daemon/store/db.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace luaflow::exec {

class Watchers {
  public:
    using OnEnd = std::function<void(const EndReport& report)>;
    explicit Watchers(store::Db& db) : db_(db) {}

    void on_end(const std::string& execution, OnEnd fn) { ends_[execution].push_back(std::move(fn)); }
    // Calls on_lines after each commit that added lines to `execution`, and on_end once it has ended.
    std::uint64_t watch_logs(const std::string& execution, std::function<void()> on_lines,
                             std::function<void()> on_end);
    void unwatch_logs(std::uint64_t token) { log_watches_.erase(token); }
    // Lines were added to `execution` in this turn: its log watchers hear of it after the commit.
    void lines_added(const std::string& execution);

    struct Ended {
        std::vector<OnEnd> waiters;
        std::vector<std::function<void()>> log_ends;
    };
    // `execution` ended: its watchers leave, to be called by the caller once the end is committed.
    Ended take(const std::string& execution);

  private:
    struct LogWatch {
        std::string execution;
        std::function<void()> on_lines, on_end;
    };
    store::Db& db_;
    std::unordered_map<std::string, std::vector<OnEnd>> ends_;
    std::map<std::uint64_t, LogWatch> log_watches_;
    std::set<std::string> dirty_;
    std::uint64_t next_token_ = 1;
};

} // namespace luaflow::exec
