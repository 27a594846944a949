#include "daemon/exec/watchers.hpp"

namespace luaflow::exec {

std::uint64_t Watchers::watch_logs(const std::string& execution, std::function<void()> on_lines,
                                   std::function<void()> on_end) {
    std::uint64_t token = next_token_++;
    log_watches_[token] = LogWatch{execution, std::move(on_lines), std::move(on_end)};
    return token;
}

void Watchers::lines_added(const std::string& execution) {
    if (log_watches_.empty()) return;
    bool first = dirty_.empty();
    dirty_.insert(execution);
    if (!first) return;
    // One call per watch per commit, however many lines the turn added.
    db_.after_commit([this] {
        std::set<std::string> dirty;
        dirty.swap(dirty_);
        std::vector<std::function<void()>> calls;
        for (auto& [token, w] : log_watches_)
            if (dirty.count(w.execution)) calls.push_back(w.on_lines);
        for (auto& c : calls)
            c();
    });
}

Watchers::Ended Watchers::take(const std::string& execution) {
    Ended ended;
    if (auto it = ends_.find(execution); it != ends_.end()) {
        ended.waiters = std::move(it->second);
        ends_.erase(it);
    }
    for (auto it = log_watches_.begin(); it != log_watches_.end();) {
        if (it->second.execution == execution) {
            ended.log_ends.push_back(std::move(it->second.on_end));
            it = log_watches_.erase(it);
        } else {
            ++it;
        }
    }
    return ended;
}

} // namespace luaflow::exec
