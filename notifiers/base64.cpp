// libcrypto through dlopen (base64.hpp), as loop/curl_api.cpp loads libcurl: opened by the first call,
// never unloaded (RTLD_NODELETE), every symbol resolved at once.
#include "notifiers/base64.hpp"

#include "common/log.hpp"
#include "common/shared_library.hpp"

// Only for EVP_EncodeBlock's declaration, so that decltype below keeps our pointer's type equal to
// OpenSSL's own; nothing of libcrypto is linked.
#include <openssl/evp.h>

#include <algorithm>
#include <cstddef>

namespace luaflow::notifiers {

namespace {

using EncodeBlockFn = decltype(EVP_EncodeBlock);

// EVP_EncodeBlock, or null when libcrypto cannot be used. Found by the first caller (C++ initialises a
// local static once, even across threads).
EncodeBlockFn* encode_block() {
    static EncodeBlockFn* const fn = []() -> EncodeBlockFn* {
        auto lib = SharedLibrary::open(kCryptoLibrary);
        if (!lib) {
            log::warn("notification headers lose their non-ASCII characters: %s",
                      lib.error().message.c_str());
            return nullptr;
        }
        EncodeBlockFn* found = nullptr;
        lib->resolve("EVP_EncodeBlock", found);
        if (auto done = lib->done(); !done) {
            log::warn("notification headers lose their non-ASCII characters: %s",
                      done.error().message.c_str());
            return nullptr;
        }
        return found;
    }();
    return fn;
}

} // namespace

std::optional<std::string> base64_encode(std::string_view bytes) {
    EncodeBlockFn* encode = encode_block();
    if (!encode) return std::nullopt;
    // EVP_EncodeBlock takes an int length and pads only its input's end, so a long input goes in chunks of
    // a multiple of 3 bytes: each chunk's output is then exactly the next part of the whole one's.
    constexpr std::size_t kChunk = 3 * 1024;
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    unsigned char buf[kChunk / 3 * 4 + 1]; // "plus a terminating NUL" (EVP_EncodeInit(3))
    for (std::size_t at = 0; at < bytes.size(); at += kChunk) {
        std::size_t n = std::min(kChunk, bytes.size() - at);
        int written =
            encode(buf, reinterpret_cast<const unsigned char*>(bytes.data() + at), static_cast<int>(n));
        out.append(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(written));
    }
    return out;
}

} // namespace luaflow::notifiers
