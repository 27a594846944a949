#include "daemon/schedule/lateness.hpp"

#include <algorithm>

namespace luaflow::schedule {

void Lateness::record(std::int64_t late_ns) {
    if (samples_.size() < kWindow)
        samples_.push_back(late_ns);
    else
        samples_[count_ % kWindow] = late_ns;
    ++count_;
    histogram_.observe(static_cast<double>(late_ns) / 1e9);
}

nlohmann::json Lateness::summary() const {
    nlohmann::json j = {{"count", count_}, {"window", samples_.size()}};
    if (samples_.empty()) {
        j["p50_ms"] = j["p99_ms"] = j["max_ms"] = nullptr;
        return j;
    }
    std::vector<std::int64_t> s = samples_;
    std::sort(s.begin(), s.end());
    auto at = [&](double q) {
        return static_cast<double>(s[static_cast<std::size_t>(q * (s.size() - 1))]) / 1e6;
    };
    j["p50_ms"] = at(0.50);
    j["p99_ms"] = at(0.99);
    j["max_ms"] = static_cast<double>(s.back()) / 1e6;
    return j;
}

} // namespace luaflow::schedule
