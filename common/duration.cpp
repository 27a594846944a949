#include "common/duration.hpp"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace luaflow {

std::optional<Millis> duration_from_seconds(double seconds) {
    if (!std::isfinite(seconds) || seconds < 0 || seconds > 1e12) return std::nullopt;
    return static_cast<Millis>(std::llround(seconds * 1000.0));
}

std::optional<Millis> parse_duration(std::string_view text) {
    if (text.empty() || text.size() > 64) return std::nullopt;
    // A decimal number and a unit, nothing else: strtod alone would take " 30", "0x1e", "inf", and
    // a C string would end at a NUL ("30\0x" read as 30 s).
    if (!(std::isdigit(static_cast<unsigned char>(text[0])) || text[0] == '.')) return std::nullopt;
    for (char c : text)
        if (c == '\0' || c == 'x' || c == 'X' || std::isspace(static_cast<unsigned char>(c)))
            return std::nullopt;
    std::string s(text);
    char* end = nullptr;
    double number = std::strtod(s.c_str(), &end);
    if (end == s.c_str()) return std::nullopt;
    std::string_view unit(end);
    double scale;
    if (unit.empty() || unit == "s")
        scale = 1;
    else if (unit == "ms")
        scale = 0.001;
    else if (unit == "m")
        scale = 60;
    else if (unit == "h")
        scale = 3600;
    else if (unit == "d")
        scale = 86400;
    else
        return std::nullopt;
    return duration_from_seconds(number * scale);
}

std::string format_duration(Millis ms) {
    struct Unit {
        Millis size;
        const char* name;
    };
    static constexpr Unit units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};
    // The largest unit that spells it short and exactly: what parse_duration reads back as ms.
    for (const Unit& u : units) {
        if (ms < u.size) continue;
        char buf[64];
        double v = static_cast<double>(ms) / static_cast<double>(u.size);
        std::snprintf(buf, sizeof buf, "%.6g%s", v, u.name);
        if (parse_duration(buf) == ms) return buf;
    }
    return std::to_string(ms) + "ms";
}

} // namespace luaflow
