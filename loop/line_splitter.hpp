#pragma once
// Splits a byte stream into lines, for everything a subprocess writes (SPEC 3: "line by line, as they
// come"): a local child's pipes (child_process.cpp), the ssh client's, a Slurm job's output files.
//
// A line ends at "\n"; one "\r" before it goes too. A line longer than kMaxLineBytes is cut there (at a
// UTF-8 character boundary), ends with kLineCutMarker and comes at once; the rest of it, up to its
// newline, is dropped. So a program that writes 300 MB without a newline costs 64 KiB of memory, a
// 64 KiB log row, and each byte is looked at once (issue 14, item 12: each chunk rescanned the partial
// line from its start). A NUL is a byte like any other.
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace luaflow::loop {

inline constexpr std::size_t kMaxLineBytes = 64 * 1024;
// What ends a cut line, after its first kMaxLineBytes bytes (luaflow-workflow(5), LOGS).
inline constexpr std::string_view kLineCutMarker = " \u2026 [line cut at 64 KiB]";

class LineSplitter {
  public:
    // Takes each line; returns false to stop (its owner is gone): feed() then returns false at once.
    using Emit = std::function<bool(std::string line)>;

    // Emits every line `chunk` ends (and a cut line when one passes the cap).
    bool feed(std::string_view chunk, const Emit& emit);
    // At the end of the stream: the last line, if it had no newline (none when it was already cut).
    std::optional<std::string> finish();

  private:
    // Adds bytes of the current line (no newline among them); true when the line had to be cut now.
    bool append(std::string_view bytes);

    std::string partial_;  // the current line so far: at most kMaxLineBytes, plus a "\r" that may end it
    bool cutting_ = false; // the current line was cut: its bytes are dropped up to its newline
};

} // namespace luaflow::loop
