#pragma once
// What luaflowctl does without a daemon: `validate` and `test` (SPEC 6).
#include "daemon/config/config.hpp"
#include "scripting/workflow_loader.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace luaflow::offline {

// Loads each file as a workflow, without running it, in a loop of its own: every error of each file, in
// source order. `config` gives the sandbox's limits and the workflows directory (luaflowd --check passes
// the daemon's); without one, the defaults with each file's own directory (luaflowctl validate).
std::vector<scripting::LoadError> load_errors(const std::vector<std::string>& files,
                                              const config::Config* config);

// {"ok": bool, "errors": [{"file","line","message"}]} for the given workflow files (and config errors).
nlohmann::json validate(const std::vector<std::string>& files);

// Loads `file`, runs it once with `input` (and `input_strings`, -i KEY=VALUE converted to the declared
// types) in a throwaway state directory, and returns {"ok": bool, "errors": [...], "report": <inspect
// document or null>}.
nlohmann::json test(const std::string& file, const nlohmann::json& input,
                    const nlohmann::json& input_strings = nlohmann::json::object());

// luaflowd --offline ARGS: prints validate's or test's document as one line of JSON on stdout; returns
// the exit code (0, or 2 for bad arguments).
int run(const std::vector<std::string>& args);

} // namespace luaflow::offline
