// luaflowctl: global options, then one command (SPEC 6; luaflowctl(1)).
#include "common/protocol.hpp"
#include "ctl/commands/commands.hpp"
#include "version.hpp"

#include <cstdio>
#include <map>
#include <string>

namespace {

using luaflow::ctl::Invocation;

void print_help(std::FILE* out) {
    std::fprintf(out,
                 "usage: luaflowctl [--socket PATH] [--json] COMMAND ...\n"
                 "  status\n"
                 "  list\n"
                 "  show WF\n"
                 "  run WF [--input JSON | --input-file FILE] [-i KEY=VALUE]... [--wait] [--follow]\n"
                 "  executions [--workflow WF] [--status S] [--limit N]     (alias: ps)\n"
                 "  inspect EXEC\n"
                 "  logs EXEC [--action NAME] [--follow] [-n N]\n"
                 "  cancel EXEC\n"
                 "  retry EXEC\n"
                 "  enable WF | disable WF\n"
                 "  next WF [-n N] [--after TIME]     upcoming fire times (default 5)\n"
                 "  kv get KEY | kv set KEY VALUE | kv delete KEY | kv list    [--workflow WF]\n"
                 "  reload\n"
                 "  notify test NOTIFIER              send a test message through a notifier\n"
                 "  validate FILE...                  offline; no daemon needed\n"
                 "  test FILE [--input JSON | --input-file FILE] [-i KEY=VALUE]...\n"
                 "                                    run once in a throwaway state directory\n"
                 "EXEC may be any unique prefix of an execution id.\n"
                 "The socket is --socket, else $LUAFLOW_SOCKET, else %s.\n"
                 "Exit status: 0 success, 1 failed, 2 usage error or invalid input, 3 daemon unreachable.\n",
                 luaflow::protocol::kDefaultSocket);
}

// Takes "--socket PATH" or "--socket=PATH" at args[i]; false when args[i] is not --socket.
bool take_socket(int argc, char** argv, int& i, Invocation& inv, bool& missing) {
    std::string a = argv[i];
    missing = false;
    if (a.rfind("--socket=", 0) == 0) {
        inv.socket = a.substr(9);
        return true;
    }
    if (a != "--socket") return false;
    if (i + 1 >= argc) {
        missing = true;
        return true;
    }
    inv.socket = argv[++i];
    return true;
}

int dispatch(const Invocation& inv) {
    using namespace luaflow::ctl;
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
        {"next", cmd_next},
        {"kv", cmd_kv},
        {"reload", cmd_reload},
        {"notify", cmd_notify},
        {"validate", cmd_validate},
        {"test", cmd_test},
    };
    auto it = commands.find(inv.command);
    if (it == commands.end())
        return usage_error("unknown command '" + inv.command + "' (see luaflowctl --help)");
    return it->second(inv);
}

} // namespace

int main(int argc, char** argv) {
    using namespace luaflow::ctl;
    Invocation inv;
    bool missing = false;
    int i = 1;
    for (; i < argc; ++i) {
        std::string a = argv[i];
        if (take_socket(argc, argv, i, inv, missing)) {
            if (missing) return usage_error("--socket needs a path");
        } else if (a == "--json") {
            inv.json = true;
        } else if (a == "-h" || a == "--help") {
            print_help(stdout);
            return kOk;
        } else if (a == "--version") {
            std::printf("luaflowctl %s\n", luaflow::kVersion);
            return kOk;
        } else if (a.size() > 1 && a[0] == '-') {
            return usage_error("unknown option '" + a + "' (see luaflowctl --help)");
        } else {
            break;
        }
    }
    if (i >= argc) { // no command: a usage error, so the summary goes to stderr
        print_help(stderr);
        return kUsage;
    }
    inv.command = argv[i++];
    // The global options may also follow the command: `luaflowctl run hello --json`.
    for (; i < argc; ++i) {
        if (take_socket(argc, argv, i, inv, missing)) {
            if (missing) return usage_error("--socket needs a path");
        } else if (std::string(argv[i]) == "--json") {
            inv.json = true;
        } else {
            inv.args.push_back(argv[i]);
        }
    }
    try {
        return dispatch(inv);
    } catch (const json::exception& e) {
        // The daemon answered with a document of another shape than luaflowctl(1) gives: a bug on one side.
        std::fprintf(stderr, "luaflowctl: unexpected answer from luaflowd: %s\n", e.what());
        return kFailed;
    }
}
