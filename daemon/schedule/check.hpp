#pragma once
// The load-time check of a workflow's schedule: every rule parses (RRULE by libical, cron, zone,
// dtstart, exdate), and a scheduled run can start (no required input without a default).
#include "scripting/workflow_loader.hpp"

#include <cstdint>
#include <optional>

namespace luaflow::schedule {

// Nothing when the schedule is fine; else the load error at the schedule's line. Whether an endless rule
// ever fires is worked out once per rule (and dtstart) and kept.
std::optional<scripting::LoadError> check_schedule(const scripting::WorkflowDef& def);
// How many times check_schedule expanded a rule to see whether it fires (for tests and benchmarks).
std::uint64_t fire_checks_computed();
// A load's result with the schedule checked too: what every loader of workflow files calls.
scripting::LoadResult checked(scripting::LoadResult loaded);

} // namespace luaflow::schedule
