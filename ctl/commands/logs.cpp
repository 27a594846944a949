// logs: an execution's log lines; with --follow, new ones as they come until the execution ends.
#include "common/time_format.hpp"
#include "ctl/commands/commands.hpp"
#include "ctl/table.hpp"

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <utility>

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
    const Syntax syntax = {"logs EXEC [--action NAME] [--follow] [-n N]",
                           {"--action", "-n", "--limit"},
                           {"--follow", "-f"},
                           1,
                           1};
    int rc = kOk;
    auto args = parse_args(inv, syntax, rc);
    if (!args) return rc;
    bool following = args->has("--follow") || args->has("-f");
    // The lines come as events, a page at a time, whatever the size of the log; the result says how many
    // there were and whether the limit cut some.
    json params = {{"execution", args->positional[0]}, {"follow", following}, {"stream", true}};
    if (auto action = args->value("--action")) params["action"] = *action;
    std::optional<std::string> limit = args->value("-n");
    if (auto long_limit = args->value("--limit"); long_limit && !limit) limit = long_limit;
    if (limit) {
        std::uint64_t n = 0;
        auto [end, ec] = std::from_chars(limit->data(), limit->data() + limit->size(), n);
        if (ec != std::errc() || end != limit->data() + limit->size() || n < 1)
            return usage_error("logs: -n needs a positive integer, got '" + *limit + "'", syntax.usage);
        params["limit"] = n;
    }
    // --json: JSON Lines when following (SPEC 6); else one array, printed as the lines come.
    bool json_array = inv.json && !following;
    bool opened = false;
    Client client(socket_path(inv.socket));
    Reply r = client.call("logs", params, [&](const json& line) {
        if (following) return print_log_event(inv, line); // flushed: a line as it comes
        if (!inv.json) return print_log_line(line);
        std::printf("%s%s", std::exchange(opened, true) ? ",\n" : "[",
                    line.dump(-1, ' ', false, json::error_handler_t::replace).c_str());
    });
    if (opened) std::printf("]\n"); // stdout stays one document even when the stream broke off
    if (!r) return report(r.error());
    if (json_array && !opened) std::printf("[]\n");
    if (r->is_object() && r->value("limited", false))
        std::fprintf(stderr, "luaflowctl: output limited to the first %s lines (-n); the log has more\n",
                     cell(r->value("lines", json())).c_str());
    return kOk;
}

} // namespace luaflow::ctl
