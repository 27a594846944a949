#pragma once
// The job logs: one row per line, in the order written.
#include "common/time_format.hpp"
#include "daemon/store/db.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace luaflow::store {

struct LogLine {
    std::int64_t id = 0;
    std::string execution;
    std::optional<std::string> action;
    std::optional<int> attempt;
    UnixMillis time = 0;
    std::string stream; // stdout | stderr | log
    std::string line;
};

std::int64_t append_log(Db& db, const LogLine& line);
// Lines of `execution` with id > after_id, oldest first, at most `limit`.
std::vector<LogLine> read_logs(Db& db, const std::string& execution, const std::optional<std::string>& action,
                               std::int64_t after_id, int limit);
// {"time","action","attempt","stream","line"} (SPEC 6).
nlohmann::json log_json(const LogLine& line);

} // namespace luaflow::store
