#pragma once
// Lua tables carry no line numbers; this finds where a key is written in a file's text, so that a
// message about a field can name its line.
#include <string_view>

namespace luaflow::scripting {

// The 1-based line of the first `key =` (or `["key"] =`) at or after line `from`, or 0.
int find_key_line(std::string_view source, std::string_view key, int from = 1);

} // namespace luaflow::scripting
