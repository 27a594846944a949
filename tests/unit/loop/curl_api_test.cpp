// loop::curl_api: libcurl through dlopen. A library that cannot be loaded, or lacks a function, is an
// error naming it and the loader's reason; the typed setopt wrappers refuse a value of the wrong type at
// compile time.
#include "loop/curl_api.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace luaflow;

// What curl reads with va_arg, by the option's number.
static_assert(loop::curl_detail::fits_option<CURLOPT_TIMEOUT_MS, long>());
static_assert(!loop::curl_detail::fits_option<CURLOPT_TIMEOUT_MS, int>()); // an int is not a long
static_assert(!loop::curl_detail::fits_option<CURLOPT_TIMEOUT_MS, const char*>());
static_assert(loop::curl_detail::fits_option<CURLOPT_URL, const char*>());
static_assert(loop::curl_detail::fits_option<CURLOPT_HTTPHEADER, curl_slist*>());
static_assert(loop::curl_detail::fits_option<CURLOPT_HTTPHEADER, std::nullptr_t>());
static_assert(!loop::curl_detail::fits_option<CURLOPT_URL, long>());
static_assert(loop::curl_detail::fits_option<CURLOPT_WRITEFUNCTION, curl_write_callback>());
static_assert(!loop::curl_detail::fits_option<CURLOPT_WRITEFUNCTION, void*>());
static_assert(!loop::curl_detail::fits_option<CURLOPT_WRITEDATA, curl_write_callback>());
static_assert(loop::curl_detail::fits_option<CURLOPT_MAXFILESIZE_LARGE, curl_off_t>());
static_assert(!loop::curl_detail::fits_option<CURLOPT_MAXFILESIZE_LARGE, int>());
static_assert(loop::curl_detail::fits_option<CURLMOPT_MAXCONNECTS, long>());
static_assert(loop::curl_detail::fits_option<CURLMOPT_TIMERFUNCTION, curl_multi_timer_callback>());
static_assert(!loop::curl_detail::fits_option<CURLMOPT_TIMERDATA, int>());
static_assert(loop::curl_detail::fits_info<CURLINFO_RESPONSE_CODE, long>());
static_assert(!loop::curl_detail::fits_info<CURLINFO_RESPONSE_CODE, int>());
static_assert(loop::curl_detail::fits_info<CURLINFO_EFFECTIVE_URL, char*>());
static_assert(!loop::curl_detail::fits_info<CURLINFO_EFFECTIVE_URL, long>());

TEST_CASE("curl_api: libcurl.so.4 loads, and its table has every function") {
    auto api = loop::curl_api();
    REQUIRE_MESSAGE(api, api.error().message);
    const loop::CurlApi& c = **api;
    CHECK(std::string(c.easy_strerror(CURLE_COULDNT_CONNECT)) == "Couldn't connect to server");
    CURL* easy = c.easy_init();
    REQUIRE(easy);
    CHECK(c.easy_set<CURLOPT_TIMEOUT_MS>(easy, 500L) == CURLE_OK);
    CHECK(c.easy_set<CURLOPT_URL>(easy, "http://127.0.0.1/") == CURLE_OK);
    char* url = nullptr;
    CHECK(c.easy_info<CURLINFO_EFFECTIVE_URL>(easy, &url) == CURLE_OK);
    c.easy_cleanup(easy);
    CHECK(loop::curl_api().value() == &c); // loaded once
}

TEST_CASE("curl_api: a library that is not there is an error naming it and the loader's reason") {
    auto api = loop::load_curl_api("libluaflow-no-such-curl.so.4");
    REQUIRE_FALSE(api);
    CHECK(api.error().message ==
          "cannot load libluaflow-no-such-curl.so.4: libluaflow-no-such-curl.so.4: cannot open shared object "
          "file: No such file or directory");
}

TEST_CASE("curl_api: a library without curl's functions is an error naming the first one missing") {
    auto api = loop::load_curl_api("libc.so.6");
    REQUIRE_FALSE(api);
    CHECK(api.error().message.find("cannot use libc.so.6: ") == 0);
    CHECK(api.error().message.find("undefined symbol: curl_global_init") != std::string::npos);
}
