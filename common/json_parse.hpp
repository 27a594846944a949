#pragma once
// JSON from outside the daemon (a job's output, json.decode in Lua), parsed with a bound on nesting:
// copying, dumping or converting a value recurses once per level, so a value nested 100 000 deep would
// overflow the stack wherever it went next (SPEC 3: input nested deeper than 128 levels is refused).
#include "common/protocol.hpp"
#include "common/result.hpp"

#include <nlohmann/json.hpp>
#include <string_view>

namespace luaflow {

// The parsed value, or an error: the parser's (naming the byte offset) or "nested deeper than N levels".
Result<nlohmann::json> parse_json_bounded(std::string_view text,
                                          std::size_t max_depth = protocol::kMaxJsonDepth);

} // namespace luaflow
