#pragma once
// GET /metrics: the Prometheus text exposition format 0.0.4, each family with its HELP and TYPE lines,
// names after Prometheus's conventions (luaflow_ prefix, base units, _total for counters).
#include "daemon/control/handlers.hpp"

#include <string>

namespace luaflow::http {

std::string metrics_text(control::Context& ctx, const std::string& state_dir);

} // namespace luaflow::http
