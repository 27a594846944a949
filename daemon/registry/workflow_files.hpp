#pragma once
// Which files of the workflows directory are workflows (SPEC 3): one scan for the registry and for
// luaflowd --check, so that the two always see the same files.
#include "common/result.hpp"

#include <string>
#include <vector>

namespace luaflow::registry {

struct WorkflowFile {
    std::string id;   // the file name without .lua (not checked: the loader names a bad one)
    std::string path; // dir + "/" + name
    // Empty for a regular file; else what it is ("a FIFO"): listed, so that a load error names it, and
    // never opened.
    std::string not_regular;
};

// The files `*.lua` directly inside `dir` (a symlink counts as what it points to), sorted by name.
// Directories (lib/, tests/, even one named x.lua) and dangling symlinks (an editor's lock file) are not
// workflows; a FIFO, socket or device named x.lua is listed with `not_regular` set. An error names the
// directory and the cause.
Result<std::vector<WorkflowFile>> workflow_files(const std::string& dir);

// `dir` and the directories below it (not hidden ones, at most 16 deep and 4096 in all), sorted: where a
// file a workflow uses may change (lib/ modules, `script` files).
std::vector<std::string> watched_directories(const std::string& dir);

} // namespace luaflow::registry
