#pragma once
// luaflowd's command line (SPEC 1). Flags win over the config file.
#include <optional>
#include <string>
#include <vector>

namespace luaflow {

struct Options {
    // The directory luaflowd was started in: relative paths, of flags and of the config file, are
    // resolved against it once, at start (SPEC 1), so that nothing depends on a later working directory.
    std::string start_dir;
    std::string config_file;                                   // empty: the default path; else absolute
    std::optional<std::string> workflows, state, socket, http; // paths absolute
    bool check = false;
    bool version = false;
    bool help = false;
    bool verbose = false;
    // luaflowd --offline [REQUEST]: what luaflowctl validate and test run, so that the CLI itself links
    // none of the engine (daemon/offline.hpp). Everything after --offline; without it, standard input.
    bool offline_mode = false;
    std::vector<std::string> offline;
};

// Parses argv, resolving relative paths against the working directory; on a usage error returns
// nullopt after printing the problem to stderr.
std::optional<Options> parse_options(int argc, char** argv);
void print_usage();

} // namespace luaflow
