#include "ctl/commands/commands.hpp"
#include "ctl/table.hpp"

#include <cstdio>

namespace luaflow::ctl {

int report(const Error& error) {
    std::fprintf(stderr, "luaflowctl: %s\n", error.message.c_str());
    switch (error.code) {
    case ErrorCode::invalid:
        return kUsage;
    case ErrorCode::unavailable:
        return kUnreachable;
    default:
        return kFailed;
    }
}

int usage_error(const std::string& message) {
    std::fprintf(stderr, "luaflowctl: %s (see luaflowctl --help)\n", message.c_str());
    return kUsage;
}

std::optional<Client> connect(const Invocation& inv, int& exit_code) {
    auto c = Client::connect(socket_path(inv.socket));
    if (!c) {
        exit_code = report(c.error());
        return std::nullopt;
    }
    return std::move(c.value());
}

std::optional<json> call(const Invocation& inv, const std::string& method, const json& params,
                         int& exit_code) {
    auto client = connect(inv, exit_code);
    if (!client) return std::nullopt;
    auto r = client->call(method, params);
    if (!r) {
        exit_code = report(r.error());
        return std::nullopt;
    }
    exit_code = kOk;
    return std::move(r.value());
}

void print_json(const json& value) {
    std::printf("%s\n", value.dump(-1, ' ', false, json::error_handler_t::replace).c_str());
}

void print_log_line(const json& l) {
    std::string who = l.value("action", json()).is_string() ? l["action"].get<std::string>() : "-";
    if (l.value("attempt", json()).is_number()) who += "#" + std::to_string(l["attempt"].get<int>());
    std::string time = cell(l.value("time", json()));
    if (time.size() > 23) time = time.substr(11, 12); // HH:MM:SS.mmm
    std::printf("%s  %s  %s  %s\n", time.c_str(), who.c_str(), l.value("stream", "").c_str(),
                l.value("line", "").c_str());
}

void print_report(const json& r) {
    std::printf("execution  %s\n", cell(r.value("id", json())).c_str());
    std::printf("workflow   %s\n", cell(r.value("workflow", json())).c_str());
    std::printf("status     %s\n", status_text(cell(r.value("status", json()))).c_str());
    json trigger = r.value("trigger", json());
    std::printf("trigger    %s\n", trigger.is_object() ? cell(trigger.value("type", json())).c_str() : "-");
    std::printf("created    %s\n", relative_time(r.value("created_at", json())).c_str());
    std::printf("duration   %s\n",
                duration_between(r.value("started_at", json()), r.value("finished_at", json())).c_str());
    if (r.value("error", json()).is_string())
        std::printf("error      %s\n", r["error"].get<std::string>().c_str());
    std::printf("\n");
    Table t({"ACTION", "STATUS", "ATTEMPTS", "DURATION", "OUTPUT / ERROR"});
    const json actions = r.value("actions", json::object());
    for (const auto& [name, a] : actions.items()) {
        std::string detail = a.value("error", json()).is_string() ? a["error"].get<std::string>()
                                                                  : cell(a.value("output", json()));
        if (detail.size() > 80) detail = detail.substr(0, 77) + "...";
        t.add({name, status_text(cell(a.value("status", json()))), std::to_string(a.value("attempts", 0)),
               duration_between(a.value("started_at", json()), a.value("finished_at", json())), detail});
    }
    t.print();
}

} // namespace luaflow::ctl
