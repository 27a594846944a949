#pragma once
// luaflowd's command line (SPEC 1). Flags win over the config file.
#include <optional>
#include <string>
#include <vector>

namespace luaflow {

struct Options {
    std::string config_file; // empty: the default path
    std::optional<std::string> workflows, state, socket, http;
    bool check = false;
    bool version = false;
    bool help = false;
    bool verbose = false;
    // luaflowd --offline validate FILE... | test FILE [INPUT_JSON]: what luaflowctl validate and test
    // run, so that the CLI itself links none of the engine. Everything after --offline.
    std::vector<std::string> offline;
};

// Parses argv; on a usage error returns nullopt after printing the problem to stderr.
std::optional<Options> parse_options(int argc, char** argv);
void print_usage();

} // namespace luaflow
