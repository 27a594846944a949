// logs: an execution's log lines; with --follow, new ones as they come until the execution ends.
#include "common/time_format.hpp"
#include "ctl/commands/commands.hpp"
#include "ctl/table.hpp"

#include <cstdio>

namespace luaflow::ctl {

namespace {

// The time of day ("10:00:00.123") of an RFC 3339 time; the date too when it is not today.
std::string log_time(const json& t) {
    if (!t.is_string()) return "-";
    const std::string& s = t.get_ref<const std::string&>();
    size_t tee = s.find('T');
    if (tee == std::string::npos) return s;
    size_t zone = s.find_first_of("Zz+-", tee);
    std::string time_of_day =
        s.substr(tee + 1, zone == std::string::npos ? std::string::npos : zone - tee - 1);
    std::string today = format_rfc3339(now_unix_ms()).substr(0, 10);
    return s.compare(0, tee, today) == 0 ? time_of_day : s.substr(0, tee) + " " + time_of_day;
}

} // namespace

void print_log_line(const json& l) {
    std::string who = cell(l.value("action", json()));
    if (json attempt = l.value("attempt", json()); attempt.is_number_integer()) who += "#" + attempt.dump();
    std::string stream = cell(l.value("stream", json()));
    if (stream == "stderr") stream = red(stream);
    std::printf("%s  %s  %s  %s\n", dim(log_time(l.value("time", json()))).c_str(), who.c_str(),
                stream.c_str(), cell(l.value("line", json())).c_str());
}

int cmd_logs(const Invocation& inv) {
    int rc = kOk;
    auto args =
        parse_args(inv, {"logs EXEC [--action NAME] [--follow]", {"--action"}, {"--follow", "-f"}, 1, 1}, rc);
    if (!args) return rc;
    bool following = args->has("--follow") || args->has("-f");
    json params = {{"execution", args->positional[0]}, {"follow", following}};
    if (auto action = args->value("--action")) params["action"] = *action;
    Client client(socket_path(inv.socket));
    // With follow the lines come as events (JSON Lines with --json) and the final result is null.
    Reply r = client.call("logs", params, [&](const json& line) { print_log_event(inv, line); });
    if (!r) return report(r.error());
    if (following) return kOk;
    if (inv.json) {
        print_json(*r);
    } else {
        for (const json& line : *r)
            print_log_line(line);
    }
    return kOk;
}

} // namespace luaflow::ctl
