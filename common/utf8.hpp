#pragma once
// UTF-8 validation: JSON text is UTF-8, so a string that is not cannot be stored (the store's columns are
// JSON) or sent. Outside strings (Lua values, webhook bodies) are checked where they come in.
#include <cstddef>
#include <string>
#include <string_view>

namespace luaflow {

// The offset of the first byte that breaks UTF-8 (RFC 3629: no overlongs, surrogates or code points past
// U+10FFFF), or npos.
std::size_t invalid_utf8_at(std::string_view s);

// "byte 0xC8 at offset 4": where `s` stops being UTF-8 (`at` from invalid_utf8_at), for a message.
std::string describe_invalid_utf8(std::string_view s, std::size_t at);

} // namespace luaflow
