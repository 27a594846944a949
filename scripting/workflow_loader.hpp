#pragma once
// Turns a workflow file's text into a validated WorkflowDef, in a fresh sandboxed state.
#include "scripting/workflow_def.hpp"

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace luaflow::scripting {

struct LoadError {
    std::string file;
    int line = 0; // 0 when unknown
    std::string message;
    // The file's other errors, after this one in source order (validate lists them all; SPEC 6).
    std::vector<LoadError> more;
    std::string to_string() const;      // "file:line: message", of this error only
    std::vector<LoadError> all() const; // this one, then `more`
};

using LoadResult = std::variant<std::shared_ptr<WorkflowDef>, LoadError>;

// A further check of a loaded definition by a part that knows more than scripting/ (its schedule): it
// runs even when the definition has errors of its own, on what could be read, so that its error is
// listed with theirs.
using DefCheck = std::function<std::optional<LoadError>(const WorkflowDef&)>;

// `[A-Za-z0-9][A-Za-z0-9_.-]*`
bool is_valid_workflow_id(std::string_view id);

// Runs `source` (shown as `file`) in a new sandbox built from `options`, expects it to return
// workflow { ... }, and validates every field (SPEC 3), and `check` if given. A failure carries every
// error found, in source order, the same on every run. Loading stops after 2 s of runaway code.
LoadResult load_workflow(const std::string& id, const std::string& file, std::string_view source,
                         const SandboxOptions& options, const DefCheck& check = {});

// The definition's Lua state and functions: its own `code` when it has one, else its `source` (with its
// scripts and lib/) evaluated again in a new state from `options`. Fails when that evaluation fails or
// gives other actions (a top level that depends on the time).
Result<std::shared_ptr<const WorkflowCode>> load_code(const WorkflowDef& def, SandboxOptions options);

// Reads the file and calls load_workflow with the id taken from the file name.
LoadResult load_workflow_file(const std::string& path, const SandboxOptions& options,
                              const DefCheck& check = {});

// Hex SHA-256-free content digest (FNV-1a 64) of a definition's text.
std::string source_digest(std::string_view source);

} // namespace luaflow::scripting
