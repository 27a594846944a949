#pragma once
// What luaflowctl does without a daemon: `validate` and `test` (SPEC 6).
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace luaflow::offline {

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
