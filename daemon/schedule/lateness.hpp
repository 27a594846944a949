#pragma once
// How late scheduled runs start (started - scheduled_for), over the most recent fires, for
// bench/schedule_bench.py and the metrics.
#include "common/histogram.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <vector>

namespace luaflow::schedule {

class Lateness {
  public:
    static constexpr std::size_t kWindow = 10'000;

    void record(std::int64_t late_ns);
    std::uint64_t count() const { return count_; }
    // {"count","window","p50_ms","p99_ms","max_ms"} over the window; nulls before the first fire.
    nlohmann::json summary() const;
    // Every fire since the start, in seconds (GET /metrics).
    const Histogram& histogram() const { return histogram_; }

  private:
    Histogram histogram_{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60};
    std::vector<std::int64_t> samples_; // a ring of kWindow
    std::uint64_t count_ = 0;
};

} // namespace luaflow::schedule
