#include "daemon/exec/queues.hpp"

#include <set>

namespace luaflow::exec {

void Queues::configure(const std::map<std::string, config::QueueConfig>& queues) {
    limits_.clear();
    for (const auto& [name, q] : queues)
        limits_[name] = q.concurrency;
}

std::optional<std::string> Queues::full(const std::string& queue) const {
    auto limit = limits_.find(queue);
    auto it = running_.find(queue);
    int running = it == running_.end() ? 0 : it->second;
    if (limit == limits_.end() || limit->second <= 0 || running < limit->second) return std::nullopt;
    return "queue " + queue + ": " + std::to_string(running) + " of " + std::to_string(limit->second) +
           " running";
}

void Queues::pass(const std::function<std::optional<std::string>(const Waiter&)>& queue_of,
                  const std::function<void(const Waiter&)>& launch) {
    std::deque<Waiter> line;
    line.swap(line_);
    std::set<std::string> full_now;
    for (Waiter& w : line) {
        std::optional<std::string> queue = queue_of(w);
        if (!queue) continue;
        if (full_now.count(*queue)) {
            line_.push_back(std::move(w));
            continue;
        }
        std::size_t before = line_.size();
        launch(w);
        if (line_.size() > before && full(*queue)) full_now.insert(*queue);
    }
}

} // namespace luaflow::exec
