#pragma once
// `luaflowctl test --mock ACTION=...` (SPEC 13): an attempt that runs nothing (no Lua, no subprocess, no
// HTTP) and ends at once as its mock says: with a pinned output, or failed with an error, which is then
// retried like any other failure.
#include "daemon/exec/attempt.hpp"

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>

namespace luaflow::exec {

struct Mock {
    std::optional<nlohmann::json> output; // succeeds with this; fails with `error` when absent
    std::string error;
};

std::unique_ptr<Attempt> mock_attempt(const Mock& mock, AttemptDone done);

} // namespace luaflow::exec
