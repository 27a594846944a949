#pragma once
// One run of a workflow for `luaflowctl test` (SPEC 13), in a throwaway state directory and a loop of
// its own: the engine as the daemon has it (the config's hosts, queues, sandbox paths, secrets and
// notifiers; the other workflows of the directory, so that workflows.run works), with notifications
// recorded and never sent, mocked actions, a chosen start time, and virtual time.
#include "common/time_format.hpp"
#include "daemon/config/config.hpp"
#include "daemon/exec/engine_services.hpp"
#include "daemon/exec/mock_attempt.hpp"
#include "scripting/workflow_loader.hpp"

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace luaflow::offline {

struct TestRun {
    std::string file;                       // the workflow to run
    std::string dir;                        // its directory: every workflow there is loaded
    const config::Config* config = nullptr; // null: the defaults (no hosts but local, no notifiers)
    nlohmann::json input = nlohmann::json::object();
    nlohmann::json input_strings = nlohmann::json::object(); // -i KEY=VALUE, converted as declared
    std::map<std::string, exec::Mock> mocks;                 // by action
    std::optional<UnixMillis> at;       // a scheduled run for this time; the clock starts there
    bool fast = false;                  // virtual time (loop/virtual_time.hpp)
    exec::EngineServices::LogEcho echo; // each log line of the run, as it is written
};

struct TestOutcome {
    std::vector<scripting::LoadError> errors; // why it did not run (the report is null then)
    nlohmann::json report;                    // the inspect document
    std::int64_t skipped_ms = 0;              // virtual time skipped
};

TestOutcome run_once(const TestRun& run);

} // namespace luaflow::offline
