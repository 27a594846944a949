#include "daemon/exec/input.hpp"

#include "common/json_number.hpp"

namespace luaflow::exec {

using nlohmann::json;
using scripting::InputType;

namespace {

const char* json_type_name(const json& v) {
    if (v.is_string()) return "string";
    if (v.is_number()) return "number";
    if (v.is_boolean()) return "boolean";
    if (v.is_null()) return "null";
    return "table";
}

bool matches(InputType type, const json& v) {
    switch (type) {
    case InputType::string:
        return v.is_string();
    case InputType::number:
        return v.is_number();
    case InputType::boolean:
        return v.is_boolean();
    case InputType::table:
        return v.is_object() || v.is_array();
    }
    return false;
}

Result<json> convert_string(const std::string& key, const std::string& raw,
                            const scripting::InputDecl* decl) {
    auto bad = [&](const char* expected) {
        return make_error(ErrorCode::invalid,
                          "input field '" + key + "': expected " + expected + ", got string \"" + raw + "\"");
    };
    if (!decl) {
        if (auto n = parse_json_number(raw)) return *n;
        return json(raw);
    }
    switch (decl->type) {
    case InputType::string:
        return json(raw);
    case InputType::number:
        if (auto n = parse_json_number(raw)) return *n;
        return bad("number");
    case InputType::boolean:
        if (raw == "true" || raw == "yes" || raw == "1") return json(true);
        if (raw == "false" || raw == "no" || raw == "0") return json(false);
        return bad("boolean (true/false)");
    case InputType::table: {
        json j = json::parse(raw, nullptr, false);
        if (j.is_discarded() || !(j.is_object() || j.is_array()))
            return bad("table (a JSON object or array)");
        return j;
    }
    }
    return json(raw);
}

} // namespace

Result<json> check_input(const scripting::WorkflowDef& def, const json& input, const json& strings) {
    json out = input.is_null() ? json::object() : input;
    if (!out.is_object()) return make_error(ErrorCode::invalid, "input must be a JSON object");
    auto find_decl = [&](const std::string& name) -> const scripting::InputDecl* {
        for (const auto& d : def.inputs)
            if (d.name == name) return &d;
        return nullptr;
    };
    if (strings.is_object()) {
        for (auto it = strings.begin(); it != strings.end(); ++it) {
            if (!it.value().is_string())
                return make_error(ErrorCode::invalid,
                                  "input field '" + it.key() + "': -i values are strings");
            auto v = convert_string(it.key(), it.value().get<std::string>(), find_decl(it.key()));
            if (!v) return v.error();
            out[it.key()] = std::move(v.value());
        }
    }
    for (const auto& d : def.inputs) {
        auto it = out.find(d.name);
        if (it == out.end() || it->is_null()) {
            if (d.default_value)
                out[d.name] = *d.default_value;
            else if (d.required)
                return make_error(ErrorCode::invalid, "input field '" + d.name + "' is required (" +
                                                          scripting::to_string(d.type) + ")");
            continue;
        }
        if (!matches(d.type, *it)) {
            return make_error(ErrorCode::invalid, "input field '" + d.name + "': expected " +
                                                      scripting::to_string(d.type) + ", got " +
                                                      json_type_name(*it) + " " + it->dump());
        }
    }
    return out;
}

} // namespace luaflow::exec
