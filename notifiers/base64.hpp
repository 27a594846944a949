#pragma once
// Base64 (RFC 4648, with padding, no line breaks) by libcrypto's EVP_EncodeBlock, for RFC 2047's encoded
// words (message.hpp's header_text). libcrypto is opened with dlopen on the first call, never linked: the
// daemon already maps it through libcurl, so it costs nothing there.
#include <optional>
#include <string>
#include <string_view>

namespace luaflow::notifiers {

// The shared object opened: OpenSSL 3's libcrypto.
inline constexpr const char* kCryptoLibrary = "libcrypto.so.3";

// `bytes` in base64; nullopt when libcrypto cannot be loaded (logged once, as a warning).
std::optional<std::string> base64_encode(std::string_view bytes);

} // namespace luaflow::notifiers
