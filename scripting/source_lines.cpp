#include "scripting/source_lines.hpp"

#include <cctype>
#include <string>

namespace luaflow::scripting {

namespace {

bool ident_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

// Whether `line` has `key` as a table key at position `pos`: key, then spaces, then '=' (not '==').
bool key_at(std::string_view line, size_t pos, std::string_view key) {
    size_t end = pos + key.size();
    if (pos > 0 && ident_char(line[pos - 1])) return false;
    if (end < line.size() && ident_char(line[end])) return false;
    // ["key"] or ['key']
    if (pos >= 2 && (line[pos - 1] == '"' || line[pos - 1] == '\'') && line[pos - 2] == '[') {
        if (end + 1 >= line.size() || line[end] != line[pos - 1] || line[end + 1] != ']') return false;
        end += 2;
    }
    while (end < line.size() && (line[end] == ' ' || line[end] == '\t'))
        ++end;
    return end < line.size() && line[end] == '=' && (end + 1 >= line.size() || line[end + 1] != '=');
}

} // namespace

int find_key_line(std::string_view source, std::string_view key, int from) {
    int lineno = 1;
    size_t start = 0;
    while (start <= source.size()) {
        size_t nl = source.find('\n', start);
        std::string_view line =
            source.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
        if (lineno >= from) {
            std::string_view code = line.substr(0, line.find("--"));
            for (size_t pos = code.find(key); pos != std::string_view::npos; pos = code.find(key, pos + 1))
                if (key_at(code, pos, key)) return lineno;
        }
        if (nl == std::string_view::npos) break;
        start = nl + 1;
        ++lineno;
    }
    return 0;
}

} // namespace luaflow::scripting
