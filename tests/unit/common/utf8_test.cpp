#include "common/utf8.hpp"

#include <doctest/doctest.h>

#include <string>

using luaflow::describe_invalid_utf8;
using luaflow::invalid_utf8_at;

TEST_CASE("utf8: text is UTF-8 up to the first byte that breaks RFC 3629") {
    CHECK(invalid_utf8_at("") == std::string::npos);
    CHECK(invalid_utf8_at("plain ascii") == std::string::npos);
    CHECK(invalid_utf8_at("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80") == std::string::npos); // é € 😀
    CHECK(invalid_utf8_at("{\"a\xDE\xC8"
                          "1}") == 3);               // a lead byte without its continuation
    CHECK(invalid_utf8_at("ab\xC0\x80") == 2);       // an overlong NUL
    CHECK(invalid_utf8_at("\xED\xA0\x80") == 0);     // a surrogate
    CHECK(invalid_utf8_at("\xF4\x90\x80\x80") == 0); // past U+10FFFF
    CHECK(invalid_utf8_at("ok\xE2\x82") == 2);       // cut short
    CHECK(invalid_utf8_at("\x80") == 0);             // a continuation byte alone
    CHECK(describe_invalid_utf8("{\"a\xDE\xC8"
                                "1}",
                                3) == "byte 0xDE at offset 3");
}
