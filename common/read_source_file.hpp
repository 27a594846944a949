#pragma once
// Reads a Lua source file a user put in the workflows directory: a workflow file, a lib/ module, a
// `script` file (SPEC 3). Only a regular file (after following symlinks) of at most `limit` bytes is
// read; a FIFO, a socket, a device or a directory is refused naming it, so that no file can hang or
// flood the daemon (issue 14, item 7). Blocking file I/O: call it off the loop, or where blocking is
// fine (luaflowd --check, validate).
#include "common/result.hpp"

#include <cstddef>
#include <string>

namespace luaflow {

// What a workflow, module or script file may weigh: far more than any hand-written Lua.
constexpr std::size_t kMaxSourceFileBytes = 4 * 1024 * 1024;

// The file's text; or an error naming the file and what is wrong with it (not there, not a regular
// file, larger than `limit`, unreadable).
Result<std::string> read_source_file(const std::string& path, std::size_t limit = kMaxSourceFileBytes);

// What a file of this st_mode is, for messages: "a directory", "a FIFO", ... ("not a regular file").
const char* file_kind(unsigned mode);

} // namespace luaflow
