// An execution's input on the command line, the same for run and test: --input JSON | --input-file FILE,
// and -i KEY=VALUE.
#include "ctl/commands/commands.hpp"

#include "common/bounded_read.hpp"
#include "common/protocol.hpp"

namespace luaflow::ctl {

std::vector<std::string> input_options() {
    return {"--input", "--input-file", "-i"};
}

std::optional<InputArgs> parse_input(const Invocation& inv, const Args& args, const char* usage,
                                     int& exit_code) {
    InputArgs out;
    std::optional<std::string> text = args.value("--input");
    std::string what = "--input";
    if (auto file = args.value("--input-file")) {
        if (text) {
            exit_code = usage_error(inv.command + ": give --input or --input-file, not both", usage);
            return std::nullopt;
        }
        // It goes to luaflowd in one request line: a larger file could never be sent, and /dev/zero
        // would never end.
        auto read =
            read_bounded(*file, protocol::kMaxLine,
                         *file == "-" ? std::string("input from standard input") : "input file " + *file);
        if (!read) {
            exit_code = usage_error(inv.command + ": " + read.error().message);
            return std::nullopt;
        }
        text = std::move(*read);
        what = "--input-file " + *file;
    }
    if (text) {
        auto parsed = parse_json_object(*text, what, exit_code);
        if (!parsed) return std::nullopt;
        out.input = std::move(*parsed);
    }
    for (const auto& [option, value] : args.options) {
        if (option != "-i") continue;
        size_t eq = value.find('=');
        if (eq == std::string::npos || eq == 0) {
            exit_code = usage_error(inv.command + ": -i needs KEY=VALUE, got '" + value + "'", usage);
            return std::nullopt;
        }
        out.strings[value.substr(0, eq)] = value.substr(eq + 1); // a later -i for the same KEY wins
    }
    return out;
}

} // namespace luaflow::ctl
