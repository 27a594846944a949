#pragma once
// Cron expressions (cron(5), Vixie cron as on Debian) translated into RRULEs for libical to expand.
#include "common/result.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace luaflow::schedule {

// The RRULEs (RFC 5545, without DTSTART) whose union is the cron expression's schedule: the five
// fields minute hour day-of-month month day-of-week, or an alias (@yearly ...).
Result<std::vector<std::string>> cron_to_rrules(std::string_view expr);

} // namespace luaflow::schedule
