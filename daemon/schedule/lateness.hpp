#pragma once
// How late scheduled runs start (started - scheduled_for), over the most recent fires, for
// bench/schedule_bench.py and the metrics.
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

  private:
    std::vector<std::int64_t> samples_; // a ring of kWindow
    std::uint64_t count_ = 0;
};

} // namespace luaflow::schedule
