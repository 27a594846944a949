#pragma once
// The named queues (SPEC 2, `queues`): how many of each queue's actions run, against its concurrency,
// and the line of pending actions that wait for a queue slot or for a host's resources, oldest first.
#include "daemon/config/config.hpp"

#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>

namespace luaflow::exec {

struct Waiter {
    std::string execution;
    std::size_t action = 0;
};

class Queues {
  public:
    void configure(const std::map<std::string, config::QueueConfig>& queues);
    // Why an action of `queue` cannot start now ("queue gpu: 2 of 2 running"), or nothing.
    std::optional<std::string> full(const std::string& queue) const;
    void take(const std::string& queue) { ++running_[queue]; }
    void give_back(const std::string& queue) { --running_[queue]; }

    void join(Waiter w) { line_.push_back(std::move(w)); }
    bool anyone_waiting() const { return !line_.empty(); }
    // One pass over the line, oldest first. `queue_of` names a waiter's queue, or nothing when it waits
    // no more (it leaves the line); `launch` tries to start it, and one that still cannot start joins
    // again. Once a queue is found full in the pass, the rest of its line keeps its place unasked: with
    // thousands waiting on a queue, each freed slot costs a lookup per waiter, not a launch attempt.
    void pass(const std::function<std::optional<std::string>(const Waiter&)>& queue_of,
              const std::function<void(const Waiter&)>& launch);

  private:
    std::map<std::string, int> limits_;
    std::map<std::string, int> running_;
    std::deque<Waiter> line_; // entries may be stale: queue_of drops them
};

} // namespace luaflow::exec
