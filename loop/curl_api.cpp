// libcurl through dlopen (loop/curl_api.hpp). Loaded on the first request, never unloaded (RTLD_NODELETE,
// as systemd): easy and multi handles, and curl's own threads (its resolver), may outlive any owner we
// could give the library. Every symbol is resolved at once, so that a libcurl too old for us fails
// here, with the name of what it lacks, rather than at the first call of that function.
#include "loop/curl_api.hpp"

#include "common/log.hpp"
#include "common/shared_library.hpp"

#include <atomic>
#include <string>

namespace luaflow::loop {

namespace {

// curl_global_init was called (and curl_global_cleanup not yet).
std::atomic<bool> initialised{false};

} // namespace

Result<CurlApi> load_curl_api(const char* soname) {
    auto lib = SharedLibrary::open(soname);
    if (!lib) return lib.error();
    CurlApi api;
    // Each member is named after its function without the "curl_" prefix.
#define LUAFLOW_CURL_SYMBOL(member) lib->resolve("curl_" #member, api.member)
    LUAFLOW_CURL_SYMBOL(global_init);
    LUAFLOW_CURL_SYMBOL(global_cleanup);
    LUAFLOW_CURL_SYMBOL(free);
    LUAFLOW_CURL_SYMBOL(easy_init);
    LUAFLOW_CURL_SYMBOL(easy_cleanup);
    LUAFLOW_CURL_SYMBOL(easy_reset);
    LUAFLOW_CURL_SYMBOL(easy_setopt);
    LUAFLOW_CURL_SYMBOL(easy_getinfo);
    LUAFLOW_CURL_SYMBOL(easy_strerror);
    LUAFLOW_CURL_SYMBOL(easy_nextheader);
    LUAFLOW_CURL_SYMBOL(multi_init);
    LUAFLOW_CURL_SYMBOL(multi_cleanup);
    LUAFLOW_CURL_SYMBOL(multi_setopt);
    LUAFLOW_CURL_SYMBOL(multi_add_handle);
    LUAFLOW_CURL_SYMBOL(multi_remove_handle);
    LUAFLOW_CURL_SYMBOL(multi_socket_action);
    LUAFLOW_CURL_SYMBOL(multi_info_read);
    LUAFLOW_CURL_SYMBOL(multi_strerror);
    LUAFLOW_CURL_SYMBOL(slist_append);
    LUAFLOW_CURL_SYMBOL(slist_free_all);
    LUAFLOW_CURL_SYMBOL(url);
    LUAFLOW_CURL_SYMBOL(url_cleanup);
    LUAFLOW_CURL_SYMBOL(url_set);
    LUAFLOW_CURL_SYMBOL(url_get);
    LUAFLOW_CURL_SYMBOL(url_strerror);
    LUAFLOW_CURL_SYMBOL(mime_init);
    LUAFLOW_CURL_SYMBOL(mime_free);
    LUAFLOW_CURL_SYMBOL(mime_addpart);
    LUAFLOW_CURL_SYMBOL(mime_data);
    LUAFLOW_CURL_SYMBOL(mime_type);
    LUAFLOW_CURL_SYMBOL(mime_encoder);
#undef LUAFLOW_CURL_SYMBOL
    if (auto found = lib->done(); !found) return found.error();
    return api;
}

Result<const CurlApi*> curl_api() {
    // Made by the first caller (C++ initialises a local static once, even across threads); the loop
    // thread is the only one that uses curl.
    static const Result<CurlApi> loaded = []() -> Result<CurlApi> {
        auto api = load_curl_api(kCurlLibrary);
        if (!api) {
            log::warn("HTTP requests fail: %s", api.error().message.c_str());
            return api;
        }
        // Thread-safe since curl 7.84 (CURL_VERSION_THREADSAFE); libuv's pool threads, the only others,
        // never use curl or its TLS library.
        if (CURLcode rc = api->global_init(CURL_GLOBAL_DEFAULT); rc != CURLE_OK) {
            std::string why =
                std::string("cannot initialise ") + kCurlLibrary + ": " + api->easy_strerror(rc);
            log::warn("HTTP requests fail: %s", why.c_str());
            return make_error(ErrorCode::unavailable, std::move(why));
        }
        initialised = true;
        log::debug("%s loaded for the first HTTP request", kCurlLibrary);
        return api;
    }();
    if (!loaded) return loaded.error();
    return &loaded.value();
}

void curl_api_cleanup() {
    if (!initialised.exchange(false)) return;
    if (auto api = curl_api()) (*api)->global_cleanup();
}

} // namespace luaflow::loop
