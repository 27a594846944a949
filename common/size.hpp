#pragma once
// Byte sizes as users write them: a number of bytes, or "64K", "512M", "2G" (powers of 1024).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace luaflow {

std::optional<std::uint64_t> parse_size(std::string_view text);
// "512 MiB", "1.5 GiB", "100 B": for messages.
std::string format_size(std::uint64_t bytes);

} // namespace luaflow
