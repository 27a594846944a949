// Secrets: read from their files, looked up with the passed variables, and masked in text and JSON.
#include "daemon/exec/secrets.hpp"
#include "tests/unit/support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>

using namespace luaflow;

TEST_CASE("secrets are read without their newline, looked up, and masked everywhere in a value") {
    testing::TempDir dir;
    std::ofstream(dir.file("a")) << "token-1234\n";
    std::ofstream(dir.file("b")) << "token-1234-long\r\n";
    std::ofstream(dir.file("c")) << "xy";
    config::Config cfg;
    cfg.env.secrets = {
        {"A", dir.file("a")}, {"B", dir.file("b")}, {"C", dir.file("c")}, {"D", dir.file("none")}};
    ::setenv("LUAFLOW_UNIT_PASSED", "visible", 1);
    exec::Secrets s;
    s.load(cfg, {"LUAFLOW_UNIT_PASSED"});
    CHECK(s.lookup("A") == "token-1234");
    CHECK(s.lookup("B") == "token-1234-long");
    CHECK_FALSE(s.lookup("C")); // too short to mask
    CHECK_FALSE(s.lookup("D")); // unreadable
    CHECK(s.lookup("LUAFLOW_UNIT_PASSED") == "visible");
    CHECK_FALSE(s.lookup("PATH")); // not passed
    // The longer secret first, so the shorter one inside it does not leave its tail behind.
    CHECK(s.redact(std::string("a=token-1234 b=token-1234-long")) == "a=*** b=***");
    nlohmann::json v = {{"list", {"x token-1234 y", 3}}, {"token-1234", {{"deep", "token-1234token-1234"}}}};
    CHECK(s.redact(v) == nlohmann::json{{"list", {"x *** y", 3}}, {"***", {{"deep", "******"}}}});
}
