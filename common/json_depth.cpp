#include "common/json_depth.hpp"

#include <nlohmann/json.hpp>

namespace luaflow {

bool json_nesting_exceeds(const std::string& text, std::size_t max) {
    struct DepthCheck : nlohmann::json_sax<nlohmann::json> {
        std::size_t depth = 0, max = 0;
        bool exceeded = false;
        bool open() {
            if (++depth <= max) return true;
            exceeded = true;
            return false; // stops the parse
        }
        bool null() override { return true; }
        bool boolean(bool) override { return true; }
        bool number_integer(number_integer_t) override { return true; }
        bool number_unsigned(number_unsigned_t) override { return true; }
        bool number_float(number_float_t, const string_t&) override { return true; }
        bool string(string_t&) override { return true; }
        bool binary(binary_t&) override { return true; }
        bool start_object(std::size_t) override { return open(); }
        bool key(string_t&) override { return true; }
        bool end_object() override {
            --depth;
            return true;
        }
        bool start_array(std::size_t) override { return open(); }
        bool end_array() override {
            --depth;
            return true;
        }
        bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
            return false; // not JSON: the real parse says so
        }
    } check;
    check.max = max;
    nlohmann::json::sax_parse(text, &check, nlohmann::json::input_format_t::json, false);
    return check.exceeded;
}

} // namespace luaflow
