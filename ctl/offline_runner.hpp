#pragma once
// validate and test need the whole engine (the loader, libical, LuaJIT, the executor). luaflowctl runs
// them in `luaflowd --offline` instead of linking it all: every other command is a process start that
// only talks to the socket, and the engine's libraries (libcurl's TLS stack above all) cost it ~10 ms
// of start-up.
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace luaflow::ctl {

// Runs `luaflowd --offline` with `request` on its standard input (daemon/offline.hpp) and returns the
// document it prints; its stderr (test's log lines) is ours. On failure prints why to stderr and sets rc.
std::optional<nlohmann::json> run_offline(const nlohmann::json& request, int& rc);

// The luaflowd to run: $LUAFLOWD, else next to this luaflowctl (the build directory), else
// ../sbin/luaflowd from it (an installation), else the configured sbin directory.
std::string luaflowd_path();

} // namespace luaflow::ctl
