#pragma once
// The lib/ modules of the workflows directory as one snapshot (SPEC 3, 5): every `lib/**/*.lua`, read
// when it changed. Every definition loaded from a scan holds the snapshot, so `require` in a running
// execution reads the text the execution started with, never what is on disk now.
#include "scripting/source_files.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace luaflow::registry {

// When a file last changed, as far as stat tells.
struct FileStamp {
    std::int64_t mtime_ns = -1;
    std::int64_t size = -1;
    bool operator==(const FileStamp&) const = default;
};

// The file's stamp, or nothing when it is not a regular file one can stat.
std::optional<FileStamp> stamp_of(const std::string& path);

struct LibSnapshot {
    std::shared_ptr<const scripting::SourceFiles> files; // "lib/a/b.lua" -> text; never null
    std::map<std::string, FileStamp> stamps;             // by the same paths
    std::vector<std::string> dirs;                       // lib/ and its subdirectories, absolute, to watch
    std::vector<std::string> errors;                     // files that could not be read, with the cause
};

// Scans `workflows_dir`/lib. A file whose stamp is the one in `previous` keeps its text from there, so a
// scan reads only what changed. Returns `previous`'s files (the same pointer) when nothing changed.
LibSnapshot scan_lib(const std::string& workflows_dir, const LibSnapshot* previous);

} // namespace luaflow::registry
