#pragma once
// Output for people: aligned tables, relative times, colour only on a terminal (and not with NO_COLOR).
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace luaflow::ctl {

class Table {
  public:
    explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}
    void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
    // Prints the header and rows with columns padded to their widest cell (colour codes not counted).
    void print() const;

  private:
    std::vector<std::string> headers_;
    std::vector<std::vector<std::string>> rows_;
};

bool use_colour();
// A status word coloured by meaning (green succeeded, red failed/timed_out, yellow running/queued...).
std::string status_text(const std::string& status);
// "3s ago", "in 5m", "-" for null; from an RFC 3339 string.
std::string relative_time(const nlohmann::json& rfc3339);
// "1.2s" between two RFC 3339 times, "-" when either is missing.
std::string duration_between(const nlohmann::json& from, const nlohmann::json& to);
// A JSON value as a short one-line text ("-" for null, strings without quotes).
std::string cell(const nlohmann::json& v);

} // namespace luaflow::ctl
