#pragma once
// What luaflowctl does without a daemon (SPEC 6 and 13): `validate`, `test FILE` and the test cases of
// a workflows directory. luaflowctl runs them as `luaflowd --offline REQUEST`, REQUEST one JSON object.
#include "daemon/config/config.hpp"
#include "scripting/workflow_loader.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace luaflow::offline {

// Loads each file as a workflow, without running it, in a loop of its own: every error of each file, in
// source order. `config` gives the sandbox's limits and the workflows directory (luaflowd --check passes
// the daemon's); without one, the defaults with each file's own directory.
std::vector<scripting::LoadError> load_errors(const std::vector<std::string>& files,
                                              const config::Config* config);

// luaflowd --offline REQUEST: prints the document of the request as one line of JSON on stdout (log
// lines of `test` go to stderr as they come); returns the exit code (0, or 2 for a bad request).
//   {"command":"validate","files":[...],"config":PATH?}
//     -> {"ok","errors":[{"file","line","message"}]}
//   {"command":"test","file":F,"config":PATH?,"input":{},"input_strings":{},"mocks":{ACTION:VALUE},
//    "at":TIME?,"fast":bool}
//     -> {"ok","errors":[...],"report":<inspect document or null>}
//   {"command":"cases","path":DIR|CASE_FILE,"config":PATH?}
//     -> {"ok","errors":[...broken case files...],"cases":[{"name","workflow","file","ok","duration_ms",
//        "failures":[...]}]}
int run(const std::vector<std::string>& args);

} // namespace luaflow::offline
