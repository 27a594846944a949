#include "loop/line_splitter.hpp"

#include <cstring>
#include <utility>

namespace luaflow::loop {

namespace {

std::string without_cr(std::string line) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
}

} // namespace

bool LineSplitter::append(std::string_view bytes) {
    if (cutting_ || bytes.empty()) return false;
    std::size_t total = partial_.size() + bytes.size();
    // A line of exactly the cap may still end with "\r\n": its "\r" waits for the newline.
    if (total <= kMaxLineBytes || (total == kMaxLineBytes + 1 && bytes.back() == '\r')) {
        partial_.append(bytes);
        return false;
    }
    // One byte past the cap says whether the cap splits a character.
    constexpr std::size_t kWanted = kMaxLineBytes + 1;
    if (partial_.size() < kWanted) partial_.append(bytes.substr(0, kWanted - partial_.size()));
    // Not inside a UTF-8 sequence: back up over continuation bytes (0x80 to 0xBF) to the start of one.
    std::size_t cut = kMaxLineBytes;
    while (cut > 0 && (static_cast<unsigned char>(partial_[cut]) & 0xC0) == 0x80)
        --cut;
    partial_.resize(cut);
    cutting_ = true;
    return true;
}

bool LineSplitter::feed(std::string_view chunk, const Emit& emit) {
    while (!chunk.empty()) {
        // memchr over the new bytes only: what is already in partial_ holds no newline.
        const void* found = std::memchr(chunk.data(), '\n', chunk.size());
        std::size_t end =
            found ? static_cast<std::size_t>(static_cast<const char*>(found) - chunk.data()) : chunk.size();
        if (append(chunk.substr(0, end))) {
            std::string line = std::exchange(partial_, {});
            line.append(kLineCutMarker);
            if (!emit(std::move(line))) return false;
        }
        if (!found) return true;
        chunk.remove_prefix(end + 1);
        if (std::exchange(cutting_, false)) continue; // the newline of a line already emitted, cut
        if (!emit(without_cr(std::exchange(partial_, {})))) return false;
    }
    return true;
}

std::optional<std::string> LineSplitter::finish() {
    bool was_cut = std::exchange(cutting_, false);
    std::string rest = std::exchange(partial_, {});
    if (was_cut || rest.empty()) return std::nullopt;
    return without_cr(std::move(rest));
}

} // namespace luaflow::loop
