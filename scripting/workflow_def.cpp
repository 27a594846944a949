#include "scripting/workflow_def.hpp"

namespace luaflow::scripting {

const char* to_string(ActionKind kind) {
    switch (kind) {
    case ActionKind::run:
        return "run";
    case ActionKind::script:
        return "script";
    case ActionKind::cmd:
        return "cmd";
    case ActionKind::shell:
        return "shell";
    }
    return "run";
}

const char* to_string(Backoff backoff) {
    return backoff == Backoff::fixed ? "fixed" : "exponential";
}

const char* to_string(Overlap overlap) {
    return overlap == Overlap::skip ? "skip" : "queue";
}

const char* to_string(InputType type) {
    switch (type) {
    case InputType::string:
        return "string";
    case InputType::number:
        return "number";
    case InputType::boolean:
        return "boolean";
    case InputType::table:
        return "table";
    }
    return "string";
}

const ActionDef* WorkflowDef::find_action(const std::string& name) const {
    auto i = action_index(name);
    return i ? &actions[*i] : nullptr;
}

std::optional<std::size_t> WorkflowDef::action_index(const std::string& name) const {
    for (std::size_t i = 0; i < actions.size(); ++i)
        if (actions[i].name == name) return i;
    return std::nullopt;
}

} // namespace luaflow::scripting
