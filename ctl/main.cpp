// luaflowctl: global options, then one command (SPEC 6).
#include "ctl/commands/commands.hpp"
#include "version.hpp"

#include <cstdio>
#include <map>
#include <string>

namespace {

void print_help() {
    std::fputs("usage: luaflowctl [--socket PATH] [--json] COMMAND ...\n"
               "  status\n"
               "  list\n"
               "  show WF\n"
               "  run WF [--input JSON | --input-file FILE] [-i KEY=VALUE]... [--wait] [--follow]\n"
               "  executions [--workflow WF] [--status S] [--limit N]     (alias: ps)\n"
               "  inspect EXEC\n"
               "  logs EXEC [--action NAME] [--follow]\n"
               "  cancel EXEC\n"
               "  retry EXEC\n"
               "  enable WF | disable WF\n"
               "  reload\n"
               "  validate FILE...                 offline; no daemon needed\n"
               "  test FILE [--input JSON]         run once in a throwaway state directory\n"
               "The socket is --socket, else $LUAFLOW_SOCKET, else /run/luaflow/luaflowd.sock.\n"
               "Exit codes: 0 success, 1 failed, 2 usage or invalid input, 3 daemon unreachable.\n",
               stdout);
}

} // namespace

int main(int argc, char** argv) {
    using namespace luaflow::ctl;
    Invocation inv;
    int i = 1;
    for (; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--socket") {
            if (i + 1 >= argc) return usage_error("--socket needs a path");
            inv.socket = argv[++i];
        } else if (a == "--json") {
            inv.json = true;
        } else if (a == "-h" || a == "--help") {
            print_help();
            return kOk;
        } else if (a == "--version") {
            std::printf("luaflowctl %s\n", luaflow::kVersion);
            return kOk;
        } else if (!a.empty() && a[0] == '-') {
            return usage_error("unknown option '" + a + "'");
        } else {
            break;
        }
    }
    if (i >= argc) {
        print_help();
        return kUsage;
    }
    inv.command = argv[i++];
    for (; i < argc; ++i) {
        std::string a = argv[i];
        // Global flags may also follow the command.
        if (a == "--json")
            inv.json = true;
        else if (a == "--socket" && i + 1 < argc)
            inv.socket = argv[++i];
        else
            inv.args.push_back(a);
    }
    static const std::map<std::string, int (*)(const Invocation&)> commands = {
        {"status", cmd_status},
        {"list", cmd_list},
        {"show", cmd_show},
        {"run", cmd_run},
        {"executions", cmd_executions},
        {"ps", cmd_executions},
        {"inspect", cmd_inspect},
        {"logs", cmd_logs},
        {"cancel", cmd_cancel},
        {"retry", cmd_retry},
        {"enable", cmd_enable},
        {"disable", cmd_disable},
        {"reload", cmd_reload},
        {"validate", cmd_validate},
        {"test", cmd_test},
    };
    auto it = commands.find(inv.command);
    if (it == commands.end()) return usage_error("unknown command '" + inv.command + "'");
    return it->second(inv);
}
