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

std::int64_t append_log(WriteTx& tx, const LogLine& line);
// Lines of `execution` with id > after_id, oldest first, at most `limit`.
std::vector<LogLine> read_logs(Db& db, const std::string& execution, const std::optional<std::string>& action,
                               std::int64_t after_id, int limit);
// One bounded page of a log, for streaming it (control/log_stream.cpp).
struct LogPage {
    std::vector<LogLine> lines; // the rows that match, oldest first
    std::int64_t last_id = 0;   // the last row looked at (matching or not): the next page starts after it
    bool full = false;          // the page stopped at its bounds: rows may follow last_id
};
// Rows of `execution` with id > after_id, oldest first, by keyset on the index logs(execution_id, id)
// (never OFFSET, so every page costs the same): at most `max_rows` rows looked at and about `max_bytes`
// of line text. Rows of other actions than `action` count as looked at, so a page's work stays bounded
// when few match.
LogPage read_log_page(Db& db, const std::string& execution, const std::optional<std::string>& action,
                      std::int64_t after_id, int max_rows, std::size_t max_bytes);
// The query read_log_page runs (its plan is checked by a test).
extern const char* const kLogPageSql;
// {"time","action","attempt","stream","line"} (SPEC 6).
nlohmann::json log_json(const LogLine& line);

} // namespace luaflow::store
