#pragma once
// The file-system work behind fs.* (SPEC 3). Blocking: run only in libuv's thread pool, never on the
// loop. Each works below a target's root and refuses, race-free, a symlink that leads out of it:
// openat2(RESOLVE_BENEATH) where the kernel has it, realpath checks where it does not (ENOSYS).
// Errors name the function and the path as the script gave it.
#include "common/result.hpp"
#include "stdlib/fs_path.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace luaflow::stdlib {

// How paths are opened below a root; tests pin the fallback.
enum class FsResolver { automatic, realpath_only };

// The whole regular file; more than `max_bytes` is an error that ends with `limit_text`.
Result<std::string> fs_read_file(const FsTarget& t, std::size_t max_bytes, const std::string& limit_text,
                                 FsResolver resolver = FsResolver::automatic);

// Replaces the file atomically (a temp file in its directory, fsync, rename), creating missing parent
// directories below the root and the scratch directory itself. A symlink in the last part that stays
// in the root is written through.
Result<void> fs_write_file(const FsTarget& t, std::string_view data,
                           FsResolver resolver = FsResolver::automatic);

// The directory's entry names without "." and "..", sorted bytewise. The scratch directory lists empty
// before anything was written to it.
Result<std::vector<std::string>> fs_list_dir(const FsTarget& t, FsResolver resolver = FsResolver::automatic);

} // namespace luaflow::stdlib
