#pragma once
// The events table: what happened to a workflow or an execution besides its status (SPEC 8's
// `skipped` and `late`), kept for inspect, show and, later, notifications.
#include "common/event.hpp"
#include "daemon/store/db.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace luaflow::store {

struct NewEvent {
    std::string workflow;
    std::optional<std::string> execution;
    Event event = Event::skipped; // skipped | late
    std::int64_t time = 0;
    std::int64_t count = 1;
    std::string message;
};

void record_event(WriteTx& tx, const NewEvent& e);
// [{"event","time","count","message"}], oldest first.
nlohmann::json execution_events(Db& db, const std::string& execution);
// The newest `limit` events of a workflow, newest first, with "execution".
nlohmann::json workflow_events(Db& db, const std::string& workflow, int limit);
// Drops workflow events (those of no execution) older than `before`; executions' go with them.
void prune_events(WriteTx& tx, std::int64_t before);

} // namespace luaflow::store
