#pragma once
// The path policy of fs.* (SPEC 3): which paths a script may use. Pure string work, no file system: the
// worker that opens a path enforces the same roots against symlinks (stdlib/fs_ops.hpp).
#include "common/result.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace luaflow::stdlib {

// The directories fs.* may use: the job's scratch directory and sandbox.paths, all absolute.
struct FsRoots {
    std::string scratch; // "" where there is none (then relative paths are refused)
    std::vector<std::string> paths;
};

// A path fs.* may use: the allowed directory it lies in and the path below that directory.
struct FsTarget {
    std::string fn;    // the Lua function, for messages: "fs.read"
    std::string shown; // the path as the script gave it, for messages
    std::string root;  // the outermost allowed directory holding the path, normalised
    std::string rel;   // below root: no empty, "." or ".." parts; "." for root itself
    bool root_is_scratch = false;
    bool is_scratch = false; // the path is the scratch directory itself
};

// Normalises an absolute directory the daemon trusts (a sandbox path, the scratch directory): no empty
// or "." parts, ".." taken lexically, no trailing '/' (but "/" stays "/").
std::string normalise_root(std::string_view dir);

// Applies the policy to `path` as given to `fn`: relative paths resolve in the scratch directory;
// absolute ones must lie in a sandbox path or the scratch directory, part by part (/srv/data2 is not in
// /srv/data); a ".." part, an empty path and a NUL byte are refused. The error names fn and the path.
Result<FsTarget> resolve_fs_path(std::string_view fn, std::string_view path, const FsRoots& roots);

} // namespace luaflow::stdlib
