// luaflowd: flags, then either --version, --check, or the daemon.
#include "common/log.hpp"
#include "daemon/app.hpp"
#include "daemon/offline.hpp"
#include "loop/curl_api.hpp"
#include "version.hpp"

#include <chrono>
#include <cstdio>
#include <malloc.h>

int main(int argc, char** argv) {
    // The wall-clock start of the process: schedule occurrences before it were missed (SPEC 4).
    const std::int64_t started_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count();
    // Blocks of 256 KiB and more are mapped for themselves and unmapped when freed. glibc's default
    // raises that bound to the largest block freed so far (up to 32 MiB): after one big execution had
    // ended, a later inspect's megabytes came from the heap and stayed resident (issue 16's "no
    // lasting memory"). A fixed bound also fixes the trim threshold (twice it).
    ::mallopt(M_MMAP_THRESHOLD, 256 * 1024);
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
    if (options->offline_mode) return luaflow::offline::run(options->offline);
    // libcurl is loaded and initialised by the first http.* call (loop/curl_api.hpp), if any.
    int code = luaflow::run_daemon(*options, started_ns);
    luaflow::loop::curl_api_cleanup();
    return code;
}
