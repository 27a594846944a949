#pragma once
// `cmd` argv templates (SPEC 3): "{{ expr }}" in an argument is replaced by the value of the Lua
// expression over the action's ctx. The expressions see `ctx` and, as shorthands, its fields (`input`,
// `outputs`, `shared`, `node`, `config`, `execution`, `scratch`). The whole argv becomes one Lua chunk,
// compiled at load time in the workflow's sandbox and called like `when`, with ctx as its argument.
#include "common/result.hpp"

#include <string>
#include <vector>

namespace luaflow::scripting {

struct TemplatePart {
    bool is_expression = false;
    std::string text; // literal text, or the expression's source without the braces
};

// True when some argument holds "{{".
bool has_templates(const std::vector<std::string>& argv);

// Splits one argument; an unclosed "{{" or an empty "{{ }}" is an error naming the argument.
Result<std::vector<TemplatePart>> parse_template(const std::string& arg, std::size_t index);

// The chunk that returns the expanded argv as a list of strings. A nil value raises "cmd[N]: {{ expr }}
// is nil"; numbers print as integers when integral; booleans as true/false; tables as JSON.
std::string argv_chunk(const std::vector<std::vector<TemplatePart>>& argv);

} // namespace luaflow::scripting
