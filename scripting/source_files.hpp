#pragma once
// The files a definition uses beside its workflow file: its `script` files and the lib/ modules it may
// require, by path relative to the workflows directory ("steps/load.lua", "lib/text/fmt.lua"). A
// definition runs only the text it holds (SPEC 5): an edit on disk makes a new definition, and a running
// or interrupted execution keeps the text it started with, across restarts too (the store keeps it).
#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace luaflow::scripting {

using SourceFiles = std::map<std::string, std::string>;

// Names a definition: the workflow file's text with the scripts and lib/ modules it was loaded with.
// Without either, the digest of the text alone (what older stores hold).
std::string definition_digest(std::string_view workflow_text, const SourceFiles& scripts,
                              const SourceFiles* lib);

} // namespace luaflow::scripting
