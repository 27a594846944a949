#pragma once
// One look at the workflows directory, made off the loop (issue 14, item 7): its lib/ snapshot, its
// workflow files, the text of each file that changed, and the directories to watch. Reading is blocking
// file I/O, so the registry runs this on the thread pool and applies the result on the loop. It touches
// nothing the loop owns: everything it needs comes in as copies.
#include "common/result.hpp"
#include "daemon/registry/lib_snapshot.hpp"
#include "daemon/registry/workflow_files.hpp"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace luaflow::registry {

// A workflow file as the scan read it: its stamp, taken before the read, and its text or why not.
struct ReadFile {
    FileStamp stamp;
    Result<std::string> text;
};

struct DirectoryScan {
    LibSnapshot lib;
    std::vector<WorkflowFile> files;
    std::optional<Error> files_error;     // the workflows directory could not be read
    std::map<std::string, ReadFile> read; // by path: the files read (new, changed, or all of them)
    std::vector<std::string> dirs;        // to watch (watched_directories)
};

// Looks at `dir`. Reads the workflow files whose stamp differs from `loaded` (by path: the files loaded
// without an error, as they were), or every one when `read_all` or when lib/ changed (every workflow
// is then loaded again). `previous_lib` is the last snapshot: unchanged modules keep its text.
DirectoryScan scan_directory(const std::string& dir, const LibSnapshot& previous_lib,
                             const std::map<std::string, FileStamp>& loaded, bool read_all);

} // namespace luaflow::registry
