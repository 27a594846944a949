#include "common/json_number.hpp"

#include <cmath>
#include <cstdint>

namespace luaflow {

namespace {

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

// Whether `text` is exactly one number of JSON's grammar: no sign but '-', no leading zero, no bare
// '.', no hex, no words, no spaces.
bool json_number_grammar(std::string_view text) {
    size_t i = 0, n = text.size();
    auto digits = [&] {
        size_t start = i;
        while (i < n && is_digit(text[i]))
            ++i;
        return i > start;
    };
    if (i < n && text[i] == '-') ++i;
    if (i < n && text[i] == '0')
        ++i;
    else if (!digits())
        return false;
    if (i < n && text[i] == '.') {
        ++i;
        if (!digits()) return false;
    }
    if (i < n && (text[i] == 'e' || text[i] == 'E')) {
        ++i;
        if (i < n && (text[i] == '+' || text[i] == '-')) ++i;
        if (!digits()) return false;
    }
    return i == n;
}

} // namespace

std::optional<nlohmann::json> parse_json_number(std::string_view text) {
    if (!json_number_grammar(text)) return std::nullopt;
    nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_number()) return std::nullopt;
    if (!j.is_number_float()) return j; // an integer, exactly as written
    double d = j.get<double>();
    if (!std::isfinite(d)) return std::nullopt; // 1e999
    if (std::floor(d) == d && std::fabs(d) < 9007199254740992.0) return static_cast<std::int64_t>(d);
    return j;
}

} // namespace luaflow
