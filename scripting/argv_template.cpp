#include "scripting/argv_template.hpp"

namespace luaflow::scripting {

namespace {

// A Lua long-bracket string literal that cannot be closed by its own content.
std::string lua_literal(const std::string& text) {
    std::string level;
    while (text.find("]" + level + "]") != std::string::npos)
        level += '=';
    // A newline right after the opening bracket would be dropped by Lua: start with one of our own.
    return "[" + level + "[\n" + text + "]" + level + "]";
}

std::string trim(const std::string& s) {
    std::size_t b = s.find_first_not_of(" \t\n");
    if (b == std::string::npos) return "";
    std::size_t e = s.find_last_not_of(" \t\n");
    return s.substr(b, e - b + 1);
}

} // namespace

bool has_templates(const std::vector<std::string>& argv) {
    for (const std::string& a : argv)
        if (a.find("{{") != std::string::npos) return true;
    return false;
}

Result<std::vector<TemplatePart>> parse_template(const std::string& arg, std::size_t index) {
    std::vector<TemplatePart> parts;
    std::size_t pos = 0;
    while (pos < arg.size()) {
        std::size_t open = arg.find("{{", pos);
        if (open == std::string::npos) {
            parts.push_back({false, arg.substr(pos)});
            break;
        }
        if (open > pos) parts.push_back({false, arg.substr(pos, open - pos)});
        std::size_t close = arg.find("}}", open + 2);
        std::string where = "cmd[" + std::to_string(index + 1) + "] \"" + arg + "\"";
        if (close == std::string::npos)
            return make_error(ErrorCode::invalid, where + ": \"{{\" without a closing \"}}\"");
        std::string expr = trim(arg.substr(open + 2, close - open - 2));
        if (expr.empty()) return make_error(ErrorCode::invalid, where + ": an empty {{ }}");
        parts.push_back({true, expr});
        pos = close + 2;
    }
    return parts;
}

std::string argv_chunk(const std::vector<std::vector<TemplatePart>>& argv) {
    std::string src =
        "local ctx = ...\n"
        "local input, outputs, shared, node, config, execution, scratch = ctx.input, ctx.outputs, "
        "ctx.shared, ctx.node, ctx.config, ctx.execution, ctx.scratch\n"
        "local function text(where, v)\n"
        "  local t = type(v)\n"
        "  if t == 'string' then return v end\n"
        "  if t == 'number' then\n"
        "    if v == math.floor(v) and v > -2^53 and v < 2^53 then return string.format('%d', v) end\n"
        "    return string.format('%.17g', v)\n"
        "  end\n"
        "  if t == 'boolean' then return tostring(v) end\n"
        "  if t == 'table' then return json.encode(v) end\n"
        "  error(where .. ' is ' .. (v == nil and 'nil' or 'a ' .. t), 0)\n"
        "end\n"
        "return {\n";
    for (std::size_t i = 0; i < argv.size(); ++i) {
        std::string arg;
        for (const TemplatePart& p : argv[i]) {
            if (!arg.empty()) arg += " .. ";
            if (p.is_expression) {
                std::string where = "cmd[" + std::to_string(i + 1) + "]: {{ " + p.text + " }}";
                arg += "text(" + lua_literal(where) + ", (" + p.text + "\n))";
            } else {
                arg += lua_literal(p.text);
            }
        }
        if (arg.empty()) arg = "''";
        src += "  " + arg + ",\n";
    }
    src += "}\n";
    return src;
}

} // namespace luaflow::scripting
