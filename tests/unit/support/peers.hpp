#pragma once
// Tests that need a real peer (sshd, a one-node Slurm cluster) this machine does not have. In CI
// (.ci/run exports LUAFLOW_REQUIRE_PEERS=1) a missing peer fails the test. Elsewhere the test prints
// kSkipMarker and returns: ctest's SKIP_REGULAR_EXPRESSION (tests/CMakeLists.txt) reports it as
// "Skipped", never as "Passed".
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace luaflow::testing {

inline constexpr const char* kSkipMarker = "LUAFLOW-TEST-SKIPPED";

// LUAFLOW_REQUIRE_PEERS is set, and not to "" or "0".
inline bool peers_required() {
    const char* v = std::getenv("LUAFLOW_REQUIRE_PEERS");
    return v && *v && std::string(v) != "0";
}

// The test cannot run without the peer `why` names: fails it in CI, otherwise reports the skip. The
// caller returns after it.
inline void missing_peer(const std::string& why) {
    if (peers_required()) FAIL("missing peer: " << why << " (LUAFLOW_REQUIRE_PEERS is set)");
    std::printf("%s: %s\n", kSkipMarker, why.c_str());
    std::fflush(stdout);
    MESSAGE("skipped: " << why);
}

} // namespace luaflow::testing
