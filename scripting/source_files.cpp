#include "scripting/source_files.hpp"

#include "common/digest.hpp"

namespace luaflow::scripting {

std::string definition_digest(std::string_view workflow_text, const SourceFiles& scripts,
                              const SourceFiles* lib) {
    if (scripts.empty() && (!lib || lib->empty())) return content_digest(workflow_text);
    // Lengths before texts, so that no two different sets read the same.
    std::string all;
    auto add = [&all](std::string_view part) {
        all += std::to_string(part.size());
        all += ':';
        all += part;
    };
    add(workflow_text);
    for (const SourceFiles* files : {&scripts, lib}) {
        if (!files) continue;
        for (const auto& [path, text] : *files) {
            add(path);
            add(content_digest(text));
        }
    }
    return content_digest(all);
}

} // namespace luaflow::scripting
