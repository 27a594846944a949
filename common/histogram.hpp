#pragma once
// A cumulative histogram as Prometheus exposes one: fixed upper bounds, a count per bound of the
// observations at or below it, their sum and their number.
#include <cstdint>
#include <initializer_list>
#include <vector>

namespace luaflow {

class Histogram {
  public:
    explicit Histogram(std::initializer_list<double> bounds) : bounds_(bounds), counts_(bounds.size(), 0) {}

    void observe(double value) {
        for (std::size_t i = 0; i < bounds_.size(); ++i)
            if (value <= bounds_[i]) ++counts_[i];
        sum_ += value;
        ++count_;
    }
    const std::vector<double>& bounds() const { return bounds_; }
    // Observations at or below bounds()[i] (cumulative, as Prometheus's `le` buckets).
    const std::vector<std::uint64_t>& counts() const { return counts_; }
    double sum() const { return sum_; }
    std::uint64_t count() const { return count_; }

  private:
    std::vector<double> bounds_;
    std::vector<std::uint64_t> counts_;
    double sum_ = 0;
    std::uint64_t count_ = 0;
};

} // namespace luaflow
