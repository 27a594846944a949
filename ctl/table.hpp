#pragma once
// Output for people: aligned tables, key: value lines, relative times, and colour only when stdout is a
// terminal and NO_COLOR is unset (https://no-color.org).
#include <nlohmann/json.hpp>

#include <string>
#include <utility>
#include <vector>

namespace luaflow::ctl {

class Table {
  public:
    explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}
    void add(std::vector<std::string> row) { rows_.push_back({std::move(row), {}}); }
    // A line printed, indented, under the last row; it does not widen the columns.
    void note(std::string text);
    // Prints the header and rows with columns padded to their widest cell (colour codes not counted).
    void print() const;

  private:
    struct Row {
        std::vector<std::string> cells;
        std::vector<std::string> notes;
    };
    std::vector<std::string> headers_;
    std::vector<Row> rows_;
};

// "key:" padded to a common width, then the value: the header lines of status, show and inspect.
class Fields {
  public:
    void add(std::string key, std::string value) { fields_.emplace_back(std::move(key), std::move(value)); }
    void print() const;

  private:
    std::vector<std::pair<std::string, std::string>> fields_;
};

bool use_colour();
// A status word coloured by meaning: green succeeded/ok, red failed/timed_out/error, yellow waiting.
std::string status_text(const std::string& status);
// Dim text, for notes such as a broken workflow's error.
std::string dim(const std::string& text);
// Red text, for what went wrong (a stderr line).
std::string red(const std::string& text);
// "3s ago", "in 5m", "-" for null; from an RFC 3339 string (shown as is when it does not parse).
std::string relative_time(const nlohmann::json& rfc3339);
// "1.2s", "3m 20s": from `from` to `to`, or to now while `to` is null (still running); "-" without `from`.
std::string elapsed(const nlohmann::json& from, const nlohmann::json& to);
// A span of seconds for people: "250ms", "4.5s", "3m 20s", "2h 5m", "3d 4h".
std::string human_span(double seconds);
// A JSON value as a short one-line text: "-" for null, strings without quotes, the rest compact JSON.
std::string cell(const nlohmann::json& v);
// `text` cut to `max` characters with "..." (UTF-8 aware, so a character is never split).
std::string truncate(const std::string& text, size_t max);

} // namespace luaflow::ctl
