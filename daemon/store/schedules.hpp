#pragma once
// The schedules table: each rule's stored series start and the newest occurrence it has handled.
#include "daemon/store/db.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace luaflow::store {

struct ScheduleRow {
    std::int64_t dtstart = 0; // Unix seconds
    std::int64_t handled = 0; // Unix seconds
};

std::optional<ScheduleRow> find_schedule(Db& db, const std::string& workflow, const std::string& rule);
// Inserts the row, or keeps the one there (a second daemon start must not move the series).
void insert_schedule(WriteTx& tx, const std::string& workflow, const std::string& rule,
                     const ScheduleRow& row);
// Occurrences up to `handled` are done with (fired or dropped).
void mark_handled(WriteTx& tx, const std::string& workflow, const std::string& rule, std::int64_t handled);
// How many scheduled occurrences of the workflow were dropped, ever (show, metrics).
std::int64_t skipped_count(Db& db, const std::string& workflow);
void add_skipped(WriteTx& tx, const std::string& workflow, std::int64_t n);

} // namespace luaflow::store
