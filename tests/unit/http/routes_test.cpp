// The HTTP API's small parsers: the listen address and the query string.
#include "daemon/http/api_server.hpp"
#include "daemon/http/routes.hpp"

#include <doctest/doctest.h>

using namespace luaflow;

TEST_CASE("http.listen: ADDR:PORT, [IPv6]:PORT; anything else is refused naming the value") {
    auto v4 = http::parse_listen("127.0.0.1:8470");
    REQUIRE(v4);
    CHECK(v4->first == "127.0.0.1");
    CHECK(v4->second == 8470);
    auto v6 = http::parse_listen("[::1]:0");
    REQUIRE(v6);
    CHECK(v6->first == "::1");
    CHECK(v6->second == 0);
    for (const char* bad :
         {"8470", "127.0.0.1", "127.0.0.1:", ":80", "::1:80", "[::1]80", "h:70000", "h:8x"}) {
        auto r = http::parse_listen(bad);
        REQUIRE_FALSE(r);
        CHECK(r.error().message.find(std::string("'") + bad + "'") != std::string::npos);
    }
}

TEST_CASE("a query's values are found by name and decoded") {
    const std::string q = "workflow=etl%2Dnightly&status=failed&limit=5&flag&name=a+b%20c&bad=%zz";
    CHECK(http::query_value(q, "workflow") == "etl-nightly");
    CHECK(http::query_value(q, "limit") == "5");
    CHECK(http::query_value(q, "flag") == "");
    CHECK(http::query_value(q, "name") == "a b c");
    CHECK(http::query_value(q, "bad") == "%zz");
    CHECK_FALSE(http::query_value(q, "missing"));
    CHECK_FALSE(http::query_value("", "x"));
}
