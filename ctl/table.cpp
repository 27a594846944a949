#include "ctl/table.hpp"

#include "common/time_format.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>

namespace luaflow::ctl {

namespace {

bool is_continuation_byte(char c) {
    return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

// Columns on screen: SGR colour sequences take none, and a UTF-8 character takes one.
size_t visible_width(const std::string& s) {
    size_t w = 0;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\x1b') {
            while (i < s.size() && s[i] != 'm')
                ++i;
            continue;
        }
        if (!is_continuation_byte(s[i])) ++w;
    }
    return w;
}

std::string colour(const char* sgr, const std::string& text) {
    if (!use_colour()) return text;
    return std::string("\x1b[") + sgr + "m" + text + "\x1b[0m";
}

std::string two_units(long long big, const char* big_unit, long long small, const char* small_unit) {
    std::string out = std::to_string(big) + big_unit;
    if (small > 0) out += " " + std::to_string(small) + small_unit;
    return out;
}

// One unit is enough to say when: "3s", "5m", "2h", "4d".
std::string coarse_span(long long s) {
    if (s < 60) return std::to_string(s) + "s";
    if (s < 3600) return std::to_string(s / 60) + "m";
    if (s < 86400) return std::to_string(s / 3600) + "h";
    return std::to_string(s / 86400) + "d";
}

} // namespace

void Table::note(std::string text) {
    if (!rows_.empty()) rows_.back().notes.push_back(std::move(text));
}

void Table::print() const {
    std::vector<size_t> widths(headers_.size(), 0);
    for (size_t c = 0; c < headers_.size(); ++c)
        widths[c] = visible_width(headers_[c]);
    for (const Row& row : rows_)
        for (size_t c = 0; c < row.cells.size() && c < widths.size(); ++c)
            widths[c] = std::max(widths[c], visible_width(row.cells[c]));
    auto line = [&](const std::vector<std::string>& cells, bool header) {
        std::string out;
        for (size_t c = 0; c < cells.size() && c < widths.size(); ++c) {
            out += header ? colour("1", cells[c]) : cells[c];
            // No padding after the last column, so lines carry no trailing blanks.
            if (c + 1 < cells.size() && c + 1 < widths.size())
                out += std::string(widths[c] - visible_width(cells[c]) + 2, ' ');
        }
        std::printf("%s\n", out.c_str());
    };
    line(headers_, true);
    for (const Row& row : rows_) {
        line(row.cells, false);
        for (const std::string& n : row.notes)
            std::printf("    %s\n", n.c_str());
    }
}

void Fields::print() const {
    size_t width = 0;
    for (const auto& [key, value] : fields_)
        width = std::max(width, key.size() + 1);
    for (const auto& [key, value] : fields_)
        std::printf("%-*s %s\n", static_cast<int>(width), (key + ":").c_str(), value.c_str());
}

bool use_colour() {
    // NO_COLOR disables colour whenever it is set; TERM=dumb cannot show it.
    static const bool on = [] {
        const char* term = std::getenv("TERM");
        return ::isatty(STDOUT_FILENO) && !std::getenv("NO_COLOR") &&
               !(term && std::strcmp(term, "dumb") == 0);
    }();
    return on;
}

std::string status_text(const std::string& status) {
    if (status == "succeeded" || status == "ok") return colour("32", status);
    if (status == "failed" || status == "timed_out" || status == "error") return colour("31", status);
    if (status == "running" || status == "queued" || status == "pending") return colour("33", status);
    if (status == "cancelled" || status == "skipped") return colour("2", status);
    return status;
}

std::string dim(const std::string& text) {
    return colour("2", text);
}

std::string red(const std::string& text) {
    return colour("31", text);
}

std::string human_span(double seconds) {
    if (!std::isfinite(seconds) || seconds < 0) seconds = 0;
    if (seconds < 1) return std::to_string(std::lround(seconds * 1000)) + "ms";
    if (seconds < 10) {
        double tenths = std::floor(seconds * 10) / 10;
        if (tenths == std::floor(tenths))
            return std::to_string(static_cast<int>(tenths)) + "s"; // "3s", not "3.0s"
        char buf[16];
        std::snprintf(buf, sizeof buf, "%.1fs", tenths);
        return buf;
    }
    auto s = static_cast<long long>(seconds);
    if (s < 60) return std::to_string(s) + "s";
    if (s < 3600) return two_units(s / 60, "m", s % 60, "s");
    if (s < 86400) return two_units(s / 3600, "h", s % 3600 / 60, "m");
    return two_units(s / 86400, "d", s % 86400 / 3600, "h");
}

std::string relative_time(const nlohmann::json& t) {
    if (!t.is_string()) return "-";
    auto ms = parse_rfc3339(t.get<std::string>());
    if (!ms) return t.get<std::string>();
    long long delta = (now_unix_ms() - *ms) / 1000;
    if (delta == 0) return "now";
    return delta > 0 ? coarse_span(delta) + " ago" : "in " + coarse_span(-delta);
}

std::string elapsed(const nlohmann::json& from, const nlohmann::json& to) {
    if (!from.is_string()) return "-";
    auto a = parse_rfc3339(from.get<std::string>());
    auto b = to.is_string() ? parse_rfc3339(to.get<std::string>()) : std::optional<UnixMillis>(now_unix_ms());
    if (!a || !b) return "-";
    return human_span(static_cast<double>(*b - *a) / 1000.0);
}

std::string cell(const nlohmann::json& v) {
    if (v.is_null()) return "-";
    if (v.is_string()) return v.get<std::string>();
    return v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string truncate(const std::string& text, size_t max) {
    if (max < 4 || visible_width(text) <= max) return text;
    size_t chars = 0, end = 0;
    for (; end < text.size(); ++end) {
        if (is_continuation_byte(text[end])) continue;
        if (chars == max - 3) break; // `end` starts the first character that no longer fits
        ++chars;
    }
    return text.substr(0, end) + "...";
}

} // namespace luaflow::ctl
