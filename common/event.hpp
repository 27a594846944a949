#pragma once
// The events of SPEC 8, spelled as notify rules and the store spell them, with one to_string/parse
// pair (as statuses have): what a `notify` rule listens for, what the events table records (`skipped`,
// `late`) and what an action's `event` says (`resource`; `interrupted` by a restart, recorded only).
#include <optional>
#include <string>
#include <string_view>

namespace luaflow {

enum class Event { success, failure, timeout, cancelled, retry, resource, skipped, late };
// Why an action ended as it did, besides its status (inspect's `event`).
enum class ActionEvent { resource, interrupted };

const char* to_string(Event e);
const char* to_string(ActionEvent e);
std::optional<Event> parse_event(std::string_view s);
// "success, failure, timeout, cancelled, retry, resource, skipped, late": for messages.
std::string event_names();

} // namespace luaflow
