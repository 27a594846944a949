#include "common/json_parse.hpp"

namespace luaflow {

Result<nlohmann::json> parse_json_bounded(std::string_view text, std::size_t max_depth) {
    using json = nlohmann::json;
    // The parser itself keeps its own stack (no recursion); the callback drops what lies too deep, so
    // nothing deeper is ever built, and says so.
    bool too_deep = false;
    json::parser_callback_t bound = [&](int depth, json::parse_event_t event, json&) {
        if (event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) {
            if (static_cast<std::size_t>(depth) >= max_depth) {
                too_deep = true;
                return false;
            }
        }
        return !too_deep;
    };
    json value;
    try {
        value = json::parse(text.begin(), text.end(), bound);
    } catch (const json::exception& e) { // a parse error, or out_of_range: a number such as 1e999
        return make_error(ErrorCode::invalid, e.what());
    }
    if (too_deep)
        return make_error(ErrorCode::invalid, "nested deeper than " + std::to_string(max_depth) + " levels");
    return value;
}

} // namespace luaflow
