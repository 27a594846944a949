#include "ctl/table.hpp"

#include "common/time_format.hpp"

#include <cstdio>
#include <cstdlib>
#include <unistd.h>

namespace luaflow::ctl {

namespace {

size_t visible_width(const std::string& s) {
    size_t w = 0;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\x1b') { // skip an SGR sequence
            while (i < s.size() && s[i] != 'm')
                ++i;
            continue;
        }
        if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) ++w; // count UTF-8 lead bytes only
    }
    return w;
}

std::string human_span(double seconds) {
    char buf[32];
    if (seconds < 1)
        std::snprintf(buf, sizeof buf, "%.0fms", seconds * 1000);
    else if (seconds < 60)
        std::snprintf(buf, sizeof buf, "%.1fs", seconds);
    else if (seconds < 3600)
        std::snprintf(buf, sizeof buf, "%.0fm", seconds / 60);
    else if (seconds < 86400)
        std::snprintf(buf, sizeof buf, "%.0fh", seconds / 3600);
    else
        std::snprintf(buf, sizeof buf, "%.0fd", seconds / 86400);
    return buf;
}

} // namespace

bool use_colour() {
    static const bool on = ::isatty(STDOUT_FILENO) && !std::getenv("NO_COLOR");
    return on;
}

std::string status_text(const std::string& status) {
    if (!use_colour()) return status;
    const char* code = "0";
    if (status == "succeeded" || status == "ok")
        code = "32";
    else if (status == "failed" || status == "timed_out" || status == "error")
        code = "31";
    else if (status == "running" || status == "queued" || status == "pending")
        code = "33";
    else if (status == "cancelled" || status == "skipped")
        code = "2";
    return std::string("\x1b[") + code + "m" + status + "\x1b[0m";
}

std::string relative_time(const nlohmann::json& t) {
    if (!t.is_string()) return "-";
    auto ms = parse_rfc3339(t.get<std::string>());
    if (!ms) return t.get<std::string>();
    double delta = static_cast<double>(now_unix_ms() - *ms) / 1000.0;
    if (delta >= 0) return human_span(delta) + " ago";
    return "in " + human_span(-delta);
}

std::string duration_between(const nlohmann::json& from, const nlohmann::json& to) {
    if (!from.is_string() || !to.is_string()) return "-";
    auto a = parse_rfc3339(from.get<std::string>());
    auto b = parse_rfc3339(to.get<std::string>());
    if (!a || !b) return "-";
    return human_span(static_cast<double>(*b - *a) / 1000.0);
}

std::string cell(const nlohmann::json& v) {
    if (v.is_null()) return "-";
    if (v.is_string()) return v.get<std::string>();
    return v.dump();
}

void Table::print() const {
    std::vector<size_t> widths(headers_.size(), 0);
    for (size_t c = 0; c < headers_.size(); ++c)
        widths[c] = visible_width(headers_[c]);
    for (const auto& row : rows_)
        for (size_t c = 0; c < row.size() && c < widths.size(); ++c)
            widths[c] = std::max(widths[c], visible_width(row[c]));
    auto line = [&](const std::vector<std::string>& cells, bool header) {
        std::string out;
        for (size_t c = 0; c < cells.size() && c < widths.size(); ++c) {
            std::string text = header && use_colour() ? "\x1b[1m" + cells[c] + "\x1b[0m" : cells[c];
            out += text;
            if (c + 1 < cells.size()) out += std::string(widths[c] - visible_width(cells[c]) + 2, ' ');
        }
        std::printf("%s\n", out.c_str());
    };
    line(headers_, true);
    for (const auto& row : rows_)
        line(row, false);
}

} // namespace luaflow::ctl
