#include "daemon/test_run.hpp"

#include "daemon/engine.hpp"
#include "daemon/store/db.hpp"
#include "loop/virtual_time.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace luaflow::offline {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

TestOutcome failed(const std::string& file, const std::string& message) {
    TestOutcome out;
    out.errors.push_back({file, 0, message, {}});
    return out;
}

std::string workflow_id(const std::string& file) {
    std::string name = fs::path(file).filename().string();
    return name.size() > 4 && name.compare(name.size() - 4, 4, ".lua") == 0 ? name.substr(0, name.size() - 4)
                                                                            : name;
}

// Runs the loop (or the virtual clock) until the execution has ended. When nothing is left to wait for
// before that (it waits for what no test run brings), it is cancelled, so that there is a report.
void run_until_finished(uv_loop_t* loop, exec::Executor& executor, const std::string& id,
                        loop::VirtualTime* clock, json& report) {
    bool finished = false;
    (void)executor.when_finished(id, [&](const exec::EndReport& r) {
        report = r.doc();
        finished = true;
        uv_stop(loop);
    });
    auto done = [&] { return finished; };
    for (int tries = 0; tries < 2 && !finished; ++tries) {
        bool ended = clock ? clock->run(done) : (uv_run(loop, UV_RUN_DEFAULT), finished);
        if (!ended) (void)executor.cancel(id);
    }
}

} // namespace

TestOutcome run_once(const TestRun& run) {
    // Where libstdc++ looks (TMPDIR, TMP, TEMP, TEMPDIR, else /tmp); one that is not a directory is
    // named, not thrown.
    std::error_code no_temp;
    const fs::path temp = fs::temp_directory_path(no_temp);
    if (no_temp) {
        std::string where = "/tmp";
        for (const char* name : {"TMPDIR", "TMP", "TEMP", "TEMPDIR"})
            if (const char* value = std::getenv(name)) {
                where = std::string(name) + "=" + value;
                break;
            }
        return failed(run.file,
                      "cannot create a temporary state directory: " + where + ": " + no_temp.message());
    }
    std::string tmpl = (temp / "luaflow-test-XXXXXX").string();
    if (!::mkdtemp(tmpl.data()))
        return failed(run.file, "cannot create a temporary state directory in " + temp.string() + ": " +
                                    std::strerror(errno));
    const std::string state = tmpl;
    const std::int64_t shift_before = clock_shift();
    TestOutcome out;
    uv_loop_t loop;
    uv_loop_init(&loop);
    {
        config::Config cfg = run.config ? *run.config : config::Config{};
        if (!run.config) cfg.notifiers_known = false;
        cfg.state = state;
        cfg.workflows = run.dir;
        auto db = store::Db::open(state + "/luaflow.db");
        if (!db) {
            out = failed(run.file, db.error().message);
        } else {
            Engine engine(&loop, **db, cfg);
            engine.outbox.record_only(); // SPEC 13: notifications are in the report, never sent
            engine.executor.start_no_followers();
            if (run.echo) engine.executor.echo_logs(run.echo);
            registry::Registry& registry = engine.registry;
            // The whole directory, so that workflows.run finds the others; a file outside one (or not
            // named *.lua) alone.
            std::string id = workflow_id(run.file);
            (void)registry::first_load(registry, &loop);
            const registry::WorkflowEntry* entry = registry.find(id);
            if (!entry ||
                fs::absolute(entry->file).lexically_normal() != fs::absolute(run.file).lexically_normal()) {
                auto only = registry.load_only(run.file);
                entry = only ? registry.find(*only) : nullptr;
                if (!only && !registry.all().empty()) entry = &registry.all().begin()->second;
            }
            if (!entry || !entry->def) {
                if (entry && entry->error) {
                    out.errors = entry->error->all();
                } else {
                    out = failed(run.file, "cannot read the file");
                }
            } else {
                if (!run.mocks.empty()) engine.executor.set_mocks(entry->id, run.mocks);
                std::optional<loop::VirtualTime> clock;
                if (run.fast) clock.emplace(&loop);
                exec::SubmitRequest req;
                req.workflow = entry->id;
                req.input = run.input;
                req.input_strings = run.input_strings;
                if (run.at) {
                    shift_clock(*run.at - now_unix_ms());
                    req.trigger = {{"type", "schedule"}, {"test", true}};
                    req.scheduled_for = *run.at;
                    req.triggered_at = *run.at;
                }
                auto exec_id = engine.executor.submit(req);
                if (!exec_id) {
                    out = failed(run.file, exec_id.error().message);
                } else {
                    run_until_finished(&loop, engine.executor, *exec_id, clock ? &*clock : nullptr,
                                       out.report);
                    if (clock) out.skipped_ms = clock->skipped_ms();
                }
            }
            (**db).flush();
        }
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    shift_clock(shift_before - clock_shift());
    std::error_code ec;
    fs::remove_all(state, ec);
    return out;
}

} // namespace luaflow::offline
