#pragma once
// libcurl, loaded on first use: an idle daemon whose workflows make no request maps none of its ~30
// libraries (TLS, HTTP/2, IDN, LDAP, ...) and runs no curl_global_init. As systemd does with its optional
// libraries (src/shared/dlfcn-util.h, dlopen_many_sym_or_warn): dlopen("libcurl.so.4") once, every
// function we call resolved with dlsym into one table, typed by <curl/curl.h>'s own declarations. We
// compile against curl's headers and never link it (no DT_NEEDED in luaflowd).
#include "common/result.hpp"

#include <curl/curl.h>

#include <cstddef>
#include <type_traits>

namespace luaflow::loop {

// The soname asked of the dynamic loader (curl's ABI 4, the one <curl/curl.h> describes).
inline constexpr const char* kCurlLibrary = "libcurl.so.4";

namespace curl_detail {

template <class T>
constexpr bool is_object_pointer = std::is_null_pointer_v<T> ||
                                   (std::is_pointer_v<T> && !std::is_function_v<std::remove_pointer_t<T>>);
template <class T>
constexpr bool is_function_pointer = std::is_pointer_v<T>&& std::is_function_v<std::remove_pointer_t<T>>;

// curl_easy_setopt and curl_multi_setopt are variadic: curl reads the value with va_arg as the type the
// option's number announces (CURLOPTTYPE_* in curl.h: option / 10000). A wrong type compiles and is
// read as garbage; these checks make it a compile error instead.
template <long Option, class T> constexpr bool fits_option() {
    constexpr long kind = Option / 10000 * 10000;
    if constexpr (kind == CURLOPTTYPE_LONG)
        return std::is_same_v<T, long>; // never an int
    else if constexpr (kind == CURLOPTTYPE_OBJECTPOINT)
        return is_object_pointer<T>; // and strings, slists
    else if constexpr (kind == CURLOPTTYPE_FUNCTIONPOINT)
        return is_function_pointer<T>;
    else if constexpr (kind == CURLOPTTYPE_OFF_T)
        return std::is_same_v<T, curl_off_t>;
    else if constexpr (kind == CURLOPTTYPE_BLOB)
        return std::is_same_v<T, curl_blob*>;
    else
        return false;
}

// curl_easy_getinfo: the CURLINFO's type bits say what the pointer points to.
template <long Info, class T> constexpr bool fits_info() {
    constexpr long kind = Info & CURLINFO_TYPEMASK;
    if constexpr (kind == CURLINFO_STRING)
        return std::is_same_v<T, char*>;
    else if constexpr (kind == CURLINFO_LONG)
        return std::is_same_v<T, long>;
    else if constexpr (kind == CURLINFO_DOUBLE)
        return std::is_same_v<T, double>;
    else if constexpr (kind == CURLINFO_SLIST)
        return std::is_pointer_v<T>; // curl_slist*, or a PTR's struct
    else if constexpr (kind == CURLINFO_SOCKET)
        return std::is_same_v<T, curl_socket_t>;
    else if constexpr (kind == CURLINFO_OFF_T)
        return std::is_same_v<T, curl_off_t>;
    else
        return false;
}

} // namespace curl_detail

// The functions of libcurl luaflow calls, with the signatures of <curl/curl.h>. The variadic ones are
// called through the typed wrappers at the end: api.easy_set<CURLOPT_TIMEOUT_MS>(easy, 500L).
struct CurlApi {
    decltype(&::curl_global_init) global_init = nullptr;
    decltype(&::curl_global_cleanup) global_cleanup = nullptr;
    decltype(&::curl_free) free = nullptr;

    decltype(&::curl_easy_init) easy_init = nullptr;
    decltype(&::curl_easy_cleanup) easy_cleanup = nullptr;
    decltype(&::curl_easy_reset) easy_reset = nullptr;
    decltype(&::curl_easy_setopt) easy_setopt = nullptr;
    decltype(&::curl_easy_getinfo) easy_getinfo = nullptr;
    decltype(&::curl_easy_strerror) easy_strerror = nullptr;
    decltype(&::curl_easy_nextheader) easy_nextheader = nullptr;

    decltype(&::curl_multi_init) multi_init = nullptr;
    decltype(&::curl_multi_cleanup) multi_cleanup = nullptr;
    decltype(&::curl_multi_setopt) multi_setopt = nullptr;
    decltype(&::curl_multi_add_handle) multi_add_handle = nullptr;
    decltype(&::curl_multi_remove_handle) multi_remove_handle = nullptr;
    decltype(&::curl_multi_socket_action) multi_socket_action = nullptr;
    decltype(&::curl_multi_info_read) multi_info_read = nullptr;
    decltype(&::curl_multi_strerror) multi_strerror = nullptr;

    decltype(&::curl_slist_append) slist_append = nullptr;
    decltype(&::curl_slist_free_all) slist_free_all = nullptr;

    decltype(&::curl_url) url = nullptr;
    decltype(&::curl_url_cleanup) url_cleanup = nullptr;
    decltype(&::curl_url_set) url_set = nullptr;
    decltype(&::curl_url_get) url_get = nullptr;
    decltype(&::curl_url_strerror) url_strerror = nullptr;

    // MIME messages: an e-mail's body, encoded by curl (notifiers/email.cpp).
    decltype(&::curl_mime_init) mime_init = nullptr;
    decltype(&::curl_mime_free) mime_free = nullptr;
    decltype(&::curl_mime_addpart) mime_addpart = nullptr;
    decltype(&::curl_mime_data) mime_data = nullptr;
    decltype(&::curl_mime_type) mime_type = nullptr;
    decltype(&::curl_mime_encoder) mime_encoder = nullptr;

    // curl_easy_setopt(easy, O, value), the value's type checked against O's at compile time: a long
    // for CURLOPTTYPE_LONG, an object pointer, a function pointer, a curl_off_t.
    template <CURLoption O, class T> CURLcode easy_set(CURL* easy, T value) const {
        static_assert(curl_detail::fits_option<O, T>(), "the value's type is not the one this option takes");
        return easy_setopt(easy, O, value);
    }
    // curl_multi_setopt(multi, O, value), checked the same way.
    template <CURLMoption O, class T> CURLMcode multi_set(CURLM* multi, T value) const {
        static_assert(curl_detail::fits_option<O, T>(), "the value's type is not the one this option takes");
        return multi_setopt(multi, O, value);
    }
    // curl_easy_getinfo(easy, I, out), out's type checked against I's.
    template <CURLINFO I, class T> CURLcode easy_info(CURL* easy, T* out) const {
        static_assert(curl_detail::fits_info<I, T>(), "the pointer's type is not the one this info fills");
        return easy_getinfo(easy, I, out);
    }
};

// The table, with curl_global_init done: loaded by the first call (on the first http.* call, from the
// loop thread) and kept for the life of the process. Without libcurl (not installed, too old), an error
// naming libcurl.so.4 and the loader's reason; every later call gives the same one.
Result<const CurlApi*> curl_api();
// dlopen(soname) and the table's dlsyms alone, for tests: no curl_global_init, nothing cached.
Result<CurlApi> load_curl_api(const char* soname);
// curl_global_cleanup when curl_api() initialised libcurl, else nothing: once, at exit, after the last
// transfer and multi are gone.
void curl_api_cleanup();

} // namespace luaflow::loop
