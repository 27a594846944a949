#pragma once
// Byte sizes as users write them: a number of bytes, or "64K", "512M", "2G" (powers of 1024).
#include <cstdint>
#include <optional>
#include <string_view>

namespace luaflow {

std::optional<std::uint64_t> parse_size(std::string_view text);

} // namespace luaflow
