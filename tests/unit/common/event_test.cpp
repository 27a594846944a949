// common/event: SPEC 8's events as an enum, spelled as notify rules and the store spell them.
#include "common/event.hpp"

#include <doctest/doctest.h>

using namespace luaflow;

TEST_CASE("every event reads back from its own spelling, and nothing else is an event") {
    for (Event e : {Event::success, Event::failure, Event::timeout, Event::cancelled, Event::retry,
                    Event::resource, Event::skipped, Event::late})
        CHECK(parse_event(to_string(e)) == e);
    CHECK_FALSE(parse_event("Failure"));
    CHECK_FALSE(parse_event("failed"));      // a status, not an event
    CHECK_FALSE(parse_event("interrupted")); // an action's event, recorded but not notified
    CHECK_FALSE(parse_event(""));
}

TEST_CASE("the list of events in messages names all eight in SPEC's order") {
    CHECK(event_names() == "success, failure, timeout, cancelled, retry, resource, skipped, late");
    CHECK(std::string(to_string(ActionEvent::interrupted)) == "interrupted");
    CHECK(std::string(to_string(ActionEvent::resource)) == "resource");
}
