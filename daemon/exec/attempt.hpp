#pragma once
// One attempt of one action, whatever runs it (a Lua coroutine, a subprocess). The executor owns it;
// the runner reports once through AttemptDone, unless cancel() came first.
#include "common/duration.hpp"
#include "common/time_format.hpp"
#include "daemon/tz/zone.hpp" // format_scheduled: scheduled_for in its rule's zone
#include "scripting/outputs_log.hpp"
#include "scripting/workflow_def.hpp"

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace luaflow::exec {

using nlohmann::json;

struct AttemptResult {
    enum class Kind { succeeded, failed, timed_out, resource };
    Kind kind = Kind::succeeded;
    json output;       // succeeded
    std::string error; // otherwise
    std::optional<int> exit_code;
    std::optional<json> node;             // ctx.node at the end, when it could be read
    json shared_changes = json::object(); // top-level keys changed (null: removed); succeeded only
};

using AttemptDone = std::function<void(AttemptResult)>;

// A JSON value that no one changes once made: an execution's trigger, input and ctx.shared (replaced
// whole when an action changes it), held by the execution and by each attempt that started from it
// without a copy of its own.
using FrozenJson = std::shared_ptr<const json>;
inline FrozenJson freeze(json v) {
    return std::make_shared<const json>(std::move(v));
}
// null and {}, made once.
const FrozenJson& frozen_null();
const FrozenJson& frozen_object();

// What an attempt sees of its execution (SPEC 3, the action context).
struct AttemptSpec {
    std::shared_ptr<const scripting::WorkflowDef> def;
    std::shared_ptr<const scripting::WorkflowCode> code; // its Lua state and functions (Lua attempts)
    std::size_t action = 0;                              // index into def->actions
    std::string execution;
    FrozenJson trigger = frozen_null();
    FrozenJson input = frozen_null();
    FrozenJson shared = frozen_object(); // as it was when the attempt started
    // Finished actions' outputs: the execution's log, of which this attempt sees the first
    // `outputs_seen` entries (those finished when it started). Never null.
    std::shared_ptr<const scripting::OutputsLog> outputs = std::make_shared<scripting::OutputsLog>();
    std::size_t outputs_seen = 0;
    json node = json::object();
    int attempt = 1;
    std::optional<UnixMillis> scheduled_for;
    std::optional<std::string> scheduled_tz; // the rule's zone: scheduled_for is shown in it
    std::string scratch;                     // the job's scratch directory
    std::optional<Millis> timeout;           // effective per-attempt timeout
};

class Attempt {
  public:
    virtual ~Attempt() = default;
    // Begins the work. The report may come before start() returns; the owner must not destroy the
    // attempt from inside the report (it parks it until the next loop turn instead).
    virtual void start() = 0;
    // Stops the work; no AttemptDone follows. A subprocess gets SIGTERM, then SIGKILL 10 s later.
    virtual void cancel() = 0;
};

// The `ctx.execution` table's JSON.
json execution_json(const AttemptSpec& spec);

} // namespace luaflow::exec
