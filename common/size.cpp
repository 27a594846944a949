#include "common/size.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace luaflow {

std::optional<std::uint64_t> parse_size(std::string_view text) {
    if (text.empty() || text.size() > 32) return std::nullopt;
    std::string s(text);
    char* end = nullptr;
    double n = std::strtod(s.c_str(), &end);
    if (end == s.c_str() || !std::isfinite(n) || n < 0) return std::nullopt;
    std::string unit(end);
    if (!unit.empty() && (unit.back() == 'B' || unit.back() == 'b') && unit.size() > 1) unit.pop_back();
    double scale;
    if (unit.empty() || unit == "B" || unit == "b")
        scale = 1;
    else if (unit == "K" || unit == "k")
        scale = 1024.0;
    else if (unit == "M" || unit == "m")
        scale = 1024.0 * 1024;
    else if (unit == "G" || unit == "g")
        scale = 1024.0 * 1024 * 1024;
    else if (unit == "T" || unit == "t")
        scale = 1024.0 * 1024 * 1024 * 1024;
    else
        return std::nullopt;
    return static_cast<std::uint64_t>(std::llround(n * scale));
}

std::string format_size(std::uint64_t bytes) {
    static const char* const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = static_cast<double>(bytes);
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        ++u;
    }
    char buf[32];
    if (u == 0 || v == std::floor(v))
        std::snprintf(buf, sizeof buf, "%.0f %s", v, units[u]);
    else
        std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
    return buf;
}

} // namespace luaflow
