// The store's share of an execution, as a limit for bench/engine_bench.py's pipelined figure: the rows a
// 3-action Lua execution writes when it runs within one transaction (the execution, each action's row
// as it ended with its start, the end with the shared context), through the daemon's own store functions and
// schema, `per_commit` executions per transaction as the engine groups them under load, with nothing else: no
// socket, no Lua, no JSON documents. Prints executions per second.
//
//   raw_store_rows DIR [N] [PER_COMMIT]
#include "common/loop_thread.hpp"
#include "daemon/store/db.hpp"
#include "daemon/store/definitions.hpp"
#include "daemon/store/executions.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

using namespace luaflow;

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: raw_store_rows DIR [N] [PER_COMMIT]\n");
        return 2;
    }
    int n = argc > 2 ? std::atoi(argv[2]) : 20000;
    int per_commit = argc > 3 ? std::max(1, std::atoi(argv[3])) : 1;
    mark_loop_thread();
    auto opened = store::Db::open(std::string(argv[1]) + "/raw_store.db");
    if (!opened) {
        std::fprintf(stderr, "%s\n", opened.error().message.c_str());
        return 1;
    }
    store::Db& db = *opened.value();
    const std::string digest = "0123456789abcdef";
    store::insert_definition(db.write(), digest,
                             {"three", "three.lua", "return workflow {}", {}, store::FileTexts{}});
    db.flush();
    const char* names[] = {"double", "fetch", "report"};
    char id[32];
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) {
        store::WriteTx& tx = db.write();
        std::snprintf(id, sizeof id, "%016llx",
                      0x9e3779b97f4a7c15ULL * static_cast<unsigned long long>(i + 1));
        const UnixMillis now = 1'800'000'000'000 + i;
        store::NewExecution e;
        e.id = id;
        e.seq = i + 1;
        e.workflow = "three";
        e.definition = digest;
        e.status = ExecStatus::running;
        e.trigger = {{"type", "manual"}};
        e.input = {{"n", i}};
        e.shared = nlohmann::json::object();
        e.created_at = now;
        e.started_at = now;
        store::ExecutionText row = store::insert_execution(tx, e);
        for (const char* a : names) {
            // A Lua attempt that ends in the transaction that made its execution: its row is written
            // once, as it ended, with its start (Executor::finish_action).
            store::ActionResult r;
            r.output = nlohmann::json{{"n", i}};
            r.finished_at = now;
            r.start = store::ActionResult::Start{1, now};
            store::ActionText action;
            action.name = a;
            store::insert_action(tx, e.seq, action, &r);
        }
        // ctx.shared changed by the last action: written with the end (Executor::complete).
        const nlohmann::json shared = {{"total", 2 * i}};
        store::finish_execution(tx, row, ExecStatus::succeeded, std::nullopt, now, &shared);
        if ((i + 1) % per_commit == 0) db.flush();
    }
    db.flush();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%.0f\n", n / s);
    return 0;
}
