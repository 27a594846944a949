// luaflowd: flags, then either --version, --check, or the daemon.
#include "common/log.hpp"
#include "daemon/app.hpp"
#include "version.hpp"

#include <cstdio>

int main(int argc, char** argv) {
    luaflow::log::init();
    auto options = luaflow::parse_options(argc, argv);
    if (!options) return 2;
    if (options->help) {
        luaflow::print_usage();
        return 0;
    }
    if (options->version) {
        std::printf("luaflowd %s\n", luaflow::kVersion);
        return 0;
    }
    if (options->verbose) luaflow::log::set_min_level(luaflow::log::Level::debug);
    if (options->check) return luaflow::check_all(*options);
    return luaflow::run_daemon(*options);
}
