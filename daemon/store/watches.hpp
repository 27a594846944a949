#pragma once
// The watch_dirs and watch_files tables: which directories a workflow's file watch has taken its baseline
// of, and the state of each file it has handled (SPEC 4 `triggers.watch`).
#include "daemon/store/db.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace luaflow::store {

// What a file was when last handled: a change of either is a modification.
struct FileState {
    std::int64_t mtime_ns = 0;
    std::int64_t size = 0;
    bool operator==(const FileState&) const = default;
};

bool watch_dir_known(Db& db, const std::string& workflow, const std::string& dir);
void add_watch_dir(WriteTx& tx, const std::string& workflow, const std::string& dir);

std::optional<FileState> find_watched_file(Db& db, const std::string& workflow, const std::string& dir,
                                           const std::string& name);
std::map<std::string, FileState> watched_files(Db& db, const std::string& workflow, const std::string& dir);
void set_watched_file(WriteTx& tx, const std::string& workflow, const std::string& dir,
                      const std::string& name, const FileState& state);
void forget_watched_file(WriteTx& tx, const std::string& workflow, const std::string& dir,
                         const std::string& name);

} // namespace luaflow::store
