#include "daemon/registry/directory_scan.hpp"

#include "common/read_source_file.hpp"

namespace luaflow::registry {

DirectoryScan scan_directory(const std::string& dir, const LibSnapshot& previous_lib,
                             const std::map<std::string, FileStamp>& loaded, bool read_all) {
    DirectoryScan out;
    out.lib = scan_lib(dir, &previous_lib);
    if (out.lib.files != previous_lib.files) read_all = true;
    if (auto scanned = workflow_files(dir))
        out.files = std::move(scanned.value());
    else
        out.files_error = scanned.error();
    for (const WorkflowFile& f : out.files) {
        if (!f.not_regular.empty()) continue;
        auto stamp = stamp_of(f.path);
        if (!stamp) continue;
        auto known = loaded.find(f.path);
        if (!read_all && known != loaded.end() && known->second == *stamp) continue;
        out.read.emplace(f.path, ReadFile{*stamp, read_source_file(f.path)});
    }
    out.dirs = watched_directories(dir);
    return out;
}

} // namespace luaflow::registry
