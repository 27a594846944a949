#pragma once
// Reading a whole file a user names, with a limit: a file over it is refused naming its size (or, when
// the size is not known before reading, as for a pipe or /dev/zero, the limit), and reading stops one
// byte past the limit, so an endless source cannot hang the reader or fill its memory.
#include "common/result.hpp"

#include <cstddef>
#include <string>

namespace luaflow {

// The content of `path` ("-": standard input). `what` names it in errors ("input file data.json").
Result<std::string> read_bounded(const std::string& path, std::size_t limit, const std::string& what);

} // namespace luaflow
