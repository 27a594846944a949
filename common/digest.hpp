#pragma once
// A content digest for texts the store keeps by content (definitions, the files they use).
#include <string>
#include <string_view>

namespace luaflow {

// FNV-1a 64 of the bytes, as 16 hex digits. Not cryptographic: it names content the daemon itself
// wrote, it does not authenticate anything.
std::string content_digest(std::string_view text);

} // namespace luaflow
