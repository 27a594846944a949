#pragma once
// Turns a workflow file's text into a validated WorkflowDef, in a fresh sandboxed state.
#include "scripting/workflow_def.hpp"

#include <string>
#include <string_view>
#include <variant>

namespace luaflow::scripting {

struct LoadError {
    std::string file;
    int line = 0; // 0 when unknown
    std::string message;
    std::string to_string() const; // "file:line: message"
};

using LoadResult = std::variant<std::shared_ptr<WorkflowDef>, LoadError>;

// `[A-Za-z0-9][A-Za-z0-9_.-]*`
bool is_valid_workflow_id(std::string_view id);

// Runs `source` (shown as `file`) in a new sandbox built from `options`, expects it to return
// workflow { ... }, and validates every field (SPEC 3). Loading stops after 2 s of runaway code.
LoadResult load_workflow(const std::string& id, const std::string& file, std::string_view source,
                         const SandboxOptions& options);

// Reads the file and calls load_workflow with the id taken from the file name.
LoadResult load_workflow_file(const std::string& path, const SandboxOptions& options);

// Hex SHA-256-free content digest (FNV-1a 64) of a definition's text.
std::string source_digest(std::string_view source);

} // namespace luaflow::scripting
