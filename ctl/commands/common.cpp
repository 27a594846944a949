// What every command shares: argument parsing, error reporting, JSON output.
#include "common/json_depth.hpp"
#include "common/protocol.hpp"
#include "ctl/commands/commands.hpp"
#include "ctl/table.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <unistd.h>

namespace luaflow::ctl {

namespace {

bool contains(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

// The name of the n-th positional word in a usage line ("logs EXEC [--action NAME]", 0 -> "EXEC").
std::string positional_name(const char* usage, size_t n) {
    std::istringstream words(usage);
    std::string w;
    words >> w; // the command
    while (words >> w)
        if (w[0] != '[' && w[0] != '|' && n-- == 0) return w;
    return "argument";
}

} // namespace

bool Args::has(const std::string& flag) const {
    return contains(flags, flag);
}

std::optional<std::string> Args::value(const std::string& option) const {
    std::optional<std::string> found;
    for (const auto& [name, v] : options)
        if (name == option) found = v;
    return found;
}

std::optional<Args> parse_args(const Invocation& inv, const Syntax& syntax, int& exit_code) {
    Args out;
    const std::vector<std::string>& words = inv.args;
    for (size_t i = 0; i < words.size(); ++i) {
        const std::string& w = words[i];
        if (w == "-h" || w == "--help") {
            std::printf("usage: luaflowctl [--socket PATH] [--json] %s\n", syntax.usage);
            exit_code = kOk;
            return std::nullopt;
        }
        // A lone "-" is a positional word (by convention: standard input), not an option.
        if (w.size() < 2 || w[0] != '-') {
            out.positional.push_back(w);
            continue;
        }
        std::string name = w;
        std::optional<std::string> inline_value;
        if (size_t eq = w.find('='); w.rfind("--", 0) == 0 && eq != std::string::npos) {
            name = w.substr(0, eq);
            inline_value = w.substr(eq + 1);
        }
        if (contains(syntax.flags, name) && !inline_value) {
            out.flags.push_back(name);
        } else if (contains(syntax.value_options, name)) {
            if (!inline_value && i + 1 >= words.size()) {
                exit_code = usage_error(inv.command + ": " + name + " needs a value", syntax.usage);
                return std::nullopt;
            }
            out.options.emplace_back(name, inline_value ? *inline_value : words[++i]);
        } else {
            exit_code = usage_error(inv.command + ": unknown option '" + w + "'", syntax.usage);
            return std::nullopt;
        }
    }
    if (out.positional.size() < syntax.min_positional || out.positional.size() > syntax.max_positional) {
        std::string message =
            out.positional.size() < syntax.min_positional
                ? inv.command + ": missing " + positional_name(syntax.usage, out.positional.size())
                : inv.command + ": unexpected argument '" + out.positional[syntax.max_positional] + "'";
        exit_code = usage_error(message, syntax.usage);
        return std::nullopt;
    }
    exit_code = kOk;
    return out;
}

std::optional<json> request(const Invocation& inv, const std::string& method, const json& params,
                            int& exit_code) {
    Client client(socket_path(inv.socket));
    Reply r = client.call(method, params);
    if (!r) {
        exit_code = report(r.error());
        return std::nullopt;
    }
    exit_code = kOk;
    return std::move(*r);
}

int usage_error(const std::string& message, const char* usage) {
    std::fprintf(stderr, "luaflowctl: %s\n", message.c_str());
    if (usage) std::fprintf(stderr, "usage: luaflowctl [--socket PATH] [--json] %s\n", usage);
    return kUsage;
}

int report(const CallError& error) {
    std::fprintf(stderr, "luaflowctl: %s\n", error.error.message.c_str());
    // An answer other than "invalid" means the command failed; no answer means no daemon.
    if (!error.reached) return kUnreachable;
    return error.error.code == ErrorCode::invalid ? kUsage : kFailed;
}

void print_json(const json& value) {
    // Log lines and outputs may hold bytes that are not UTF-8: print a replacement, never throw.
    std::printf("%s\n", value.dump(-1, ' ', false, json::error_handler_t::replace).c_str());
}

json config_file_option(const Args& args) {
    constexpr const char* kSystemConfig = "/etc/luaflow/luaflowd.lua";
    for (const char* option : {"-c", "--config"})
        if (auto c = args.value(option)) return std::filesystem::absolute(*c).string();
    if (::access(kSystemConfig, R_OK) == 0) return kSystemConfig;
    return nullptr;
}

void print_load_errors(const json& errors) {
    if (!errors.is_array()) return;
    for (const json& e : errors) {
        std::string file = cell(e.value("file", json()));
        std::string message = cell(e.value("message", json()));
        if (message.rfind(file + ":", 0) == 0) { // the message names its file already
            std::printf("%s\n", message.c_str());
            continue;
        }
        json line = e.value("line", json());
        if (line.is_number_integer() && line.get<long long>() > 0) file += ":" + line.dump(); // 0: unknown
        std::printf("%s: %s\n", file.c_str(), message.c_str());
    }
}

std::optional<json> parse_json_object(const std::string& text, const std::string& what, int& exit_code) {
    // luaflowd refuses it anyway, and building and sending a deeper document recurses one frame a level.
    if (json_nesting_exceeds(text, protocol::kMaxJsonDepth)) {
        exit_code = usage_error(what + " is nested deeper than " + std::to_string(protocol::kMaxJsonDepth) +
                                " levels");
        return std::nullopt;
    }
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        exit_code = usage_error(what + " is not a JSON object: " + truncate(text, 60));
        return std::nullopt;
    }
    return j;
}

void print_events(const char* title, const json& events) {
    if (!events.is_array() || events.empty()) return;
    std::printf("\n%s:\n", title);
    for (const json& e : events)
        std::printf("  %s %s: %s\n", relative_time(e.value("time", json())).c_str(),
                    cell(e.value("event", json())).c_str(), cell(e.value("message", json())).c_str());
}

void print_log_event(const Invocation& inv, const json& line) {
    if (inv.json)
        print_json(line);
    else
        print_log_line(line);
    std::fflush(stdout); // a line as it comes, even into a pipe
}

} // namespace luaflow::ctl
