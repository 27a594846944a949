#include "daemon/options.hpp"

#include "daemon/config/config.hpp"

#include <cstdio>
#include <cstring>
#include <filesystem>

namespace luaflow {

void print_usage() {
    std::fputs("usage: luaflowd [-c FILE] [-w DIR] [-s DIR] [--socket PATH] [--http ADDR:PORT] [-v]\n"
               "       luaflowd --check [-c FILE] [-w DIR]\n"
               "       luaflowd --version\n"
               "  -c, --config FILE      config file (default /etc/luaflow/luaflowd.lua)\n"
               "  -w, --workflows DIR    workflows directory (default /etc/luaflow/workflows)\n"
               "  -s, --state DIR        state directory (default /var/lib/luaflow)\n"
               "      --socket PATH      control socket (default /run/luaflow/luaflowd.sock)\n"
               "      --http ADDR:PORT   HTTP API listen address\n"
               "      --check            check the config and every workflow, then exit\n"
               "  -v, --verbose          debug logging\n"
               "      --version          print the version\n",
               stdout);
}

std::optional<Options> parse_options(int argc, char** argv) {
    Options o;
    std::error_code ec;
    o.start_dir = std::filesystem::current_path(ec).string();
    if (ec) {
        std::fprintf(stderr, "luaflowd: cannot tell the working directory (relative paths need it): %s\n",
                     ec.message().c_str());
        return std::nullopt;
    }
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        auto value = [&](const char* name) -> std::optional<std::string> {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "luaflowd: %s needs a value\n", name);
                return std::nullopt;
            }
            return std::string(argv[++i]);
        };
        std::optional<std::string>* target = nullptr;
        if (arg == "-c" || arg == "--config") {
            auto v = value(arg.c_str());
            if (!v) return std::nullopt;
            o.config_file = config::resolve_path(*v, o.start_dir);
            continue;
        }
        if (arg == "-w" || arg == "--workflows")
            target = &o.workflows;
        else if (arg == "-s" || arg == "--state")
            target = &o.state;
        else if (arg == "--socket")
            target = &o.socket;
        else if (arg == "--http")
            target = &o.http;
        else if (arg == "--check")
            o.check = true;
        else if (arg == "--version")
            o.version = true;
        else if (arg == "-h" || arg == "--help")
            o.help = true;
        else if (arg == "-v" || arg == "--verbose")
            o.verbose = true;
        else if (arg == "--offline") {
            // The request is the next argument, or without one standard input.
            o.offline_mode = true;
            o.offline.assign(argv + i + 1, argv + argc);
            break;
        } else {
            std::fprintf(stderr, "luaflowd: unknown option '%s' (see luaflowd --help)\n", arg.c_str());
            return std::nullopt;
        }
        if (target) {
            auto v = value(arg.c_str());
            if (!v) return std::nullopt;
            // --http is an address, not a path.
            *target = target == &o.http ? *v : config::resolve_path(*v, o.start_dir);
        }
    }
    return o;
}

} // namespace luaflow
