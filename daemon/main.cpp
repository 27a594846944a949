// luaflowd: flags, then either --version, --check, or the daemon.
#include "common/log.hpp"
#include "daemon/app.hpp"
#include "daemon/offline.hpp"
#include "version.hpp"

#include <curl/curl.h>

#include <chrono>
#include <cstdio>

int main(int argc, char** argv) {
    // The wall-clock start of the process: schedule occurrences before it were missed (SPEC 4).
    const std::int64_t started_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count();
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
    if (!options->offline.empty()) return luaflow::offline::run(options->offline);
    // Once, before any other thread exists (it is not thread-safe); http.* and notifications need it.
    if (CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT); rc != CURLE_OK) {
        std::fprintf(stderr, "luaflowd: cannot initialise libcurl: %s\n", curl_easy_strerror(rc));
        return 1;
    }
    int code = luaflow::run_daemon(*options, started_ns);
    curl_global_cleanup();
    return code;
}
