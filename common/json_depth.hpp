#pragma once
// Whether JSON text nests arrays and objects deeper than a limit, found by nlohmann's own SAX parser
// before a document is built: copying, dumping and freeing a deep document recurse, one frame a level, so
// text from outside is checked first (SPEC 3: 128 levels).
#include <cstddef>
#include <string>

namespace luaflow {

bool json_nesting_exceeds(const std::string& text, std::size_t max);

} // namespace luaflow
