#pragma once
// What the rest of the daemon sees of the executor: the scheduler and triggers start executions
// (Submitter); the control socket and the HTTP API also steer, wait on and follow them
// (ExecutionControl). Neither pulls in the executor's runners, launchers and hosts.
#include "common/duration.hpp"
#include "common/result.hpp"
#include "common/status.hpp"
#include "common/time_format.hpp"
#include "daemon/exec/metrics.hpp"
#include "daemon/exec/report.hpp"
#include "daemon/store/db.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace luaflow::exec {

using nlohmann::json;

struct SubmitRequest {
    std::string workflow;
    json input = json::object();
    json input_strings = json::object(); // -i KEY=VALUE, converted to the declared types
    json trigger = {{"type", "manual"}};
    std::optional<UnixMillis> scheduled_for;
    std::optional<std::string> scheduled_tz; // the zone of the rule that fired it
    // When its trigger fired (default: when submit runs): every run a schedule starts at one instant is
    // stamped with the same wake-up, not with its place in the line.
    std::optional<UnixMillis> triggered_at;
    std::optional<std::string> parent;
    bool queue_even_if_skip = false; // catch-up runs queue even with overlap = "skip"
    // An `after` trigger's run, submitted inside the transaction that ends the execution it follows:
    // it starts after the commit (the ending execution is still on the stack), and while the daemon
    // shuts down it is written queued, for the next start, rather than refused.
    bool follows = false;
};

struct Counts {
    int running = 0;
    int queued = 0;
};

class Submitter {
  public:
    // Creates an execution; it starts at once when the workflow's concurrency allows, else queues.
    virtual Result<std::string> submit(const SubmitRequest& request) = 0;
    // At its concurrency limit: a new execution would queue (or be skipped with overlap = "skip").
    virtual bool busy(const std::string& workflow) = 0;
    virtual Counts counts(const std::string& workflow) const = 0;
    // An execution of the workflow is due soon (a schedule): makes its Lua state now, so that the
    // evaluation of its file is not paid at the instant it fires. Errors wait for the submit.
    virtual void prepare(const std::string& workflow) = 0;
    // Scheduled occurrences of `workflow` were dropped (overlap = "skip", catchup): the `skipped` event,
    // recorded and notified in `tx`.
    virtual void skipped(store::WriteTx& tx, const std::string& workflow, std::int64_t count,
                         const std::string& message) = 0;

  protected:
    ~Submitter() = default;
};

class ExecutionControl : public Submitter {
  public:
    virtual Counts counts() const = 0;
    using Submitter::counts;
    virtual Result<ExecStatus> cancel(const std::string& id) = 0;
    virtual Result<ExecStatus> retry(const std::string& id) = 0;
    // Calls fn with the inspect document once the execution has ended and that is committed (at once
    // when it has).
    virtual Result<void> when_finished(const std::string& id,
                                       std::function<void(const EndReport& report)> fn) = 0;
    // Calls on_lines after each commit that added log lines to `id`, and on_end once it has ended;
    // 0 when `id` is not running.
    virtual std::uint64_t watch_logs(const std::string& id, std::function<void()> on_lines,
                                     std::function<void()> on_end) = 0;
    virtual void unwatch_logs(std::uint64_t token) = 0;
    // Counted since the start (GET /metrics), and the actions now.
    virtual const Metrics& metrics() const = 0;
    virtual ActionCounts action_counts() const = 0;

  protected:
    ~ExecutionControl() = default;
};

} // namespace luaflow::exec
