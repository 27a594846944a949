#include "common/event.hpp"

#include <array>
#include <utility>

namespace luaflow {

namespace {
constexpr std::array<std::pair<Event, const char*>, 8> kEvents{{
    {Event::success, "success"},
    {Event::failure, "failure"},
    {Event::timeout, "timeout"},
    {Event::cancelled, "cancelled"},
    {Event::retry, "retry"},
    {Event::resource, "resource"},
    {Event::skipped, "skipped"},
    {Event::late, "late"},
}};
} // namespace

const char* to_string(Event e) {
    for (auto& [k, v] : kEvents)
        if (k == e) return v;
    return "failure";
}

const char* to_string(ActionEvent e) {
    return e == ActionEvent::resource ? "resource" : "interrupted";
}

std::optional<Event> parse_event(std::string_view s) {
    for (auto& [k, v] : kEvents)
        if (s == v) return k;
    return std::nullopt;
}

std::string event_names() {
    std::string out;
    for (auto& [k, v] : kEvents) {
        if (!out.empty()) out += ", ";
        out += v;
    }
    return out;
}

} // namespace luaflow
