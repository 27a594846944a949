// The workflow loader in its sandbox: the input is the text of a workflow file, loaded as the daemon
// loads one (scripting::load_workflow with the production sandbox options: the standard library, the
// memory cap of the default config, the 2 s load deadline) and checked as the registry checks it
// (schedule::check_schedule). What must hold: the load returns, with a definition or with errors.
#include "daemon/engine.hpp"
#include "daemon/schedule/check.hpp"
#include "scripting/workflow_loader.hpp"
#include "tests/fuzz/fuzz_support.hpp"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string_view>
#include <variant>

namespace {

using namespace luaflow;

struct Loader {
    testing::TempDir dir;
    config::Config cfg; // the defaults, as in a daemon without a config file
    uv_loop_t loop;
    std::unique_ptr<fuzz::LoadServices> services;

    Loader() {
        fuzz::quiet_process();
        cfg.workflows = dir.file("workflows");
        // A module for require("lib.util"), as workflows directories have.
        std::filesystem::create_directories(cfg.workflows + "/lib");
        std::ofstream(cfg.workflows + "/lib/util.lua")
            << "local M = {}\nfunction M.twice(x) return 2 * x end\nreturn M\n";
        uv_loop_init(&loop);
        services = std::make_unique<fuzz::LoadServices>(&loop);
    }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static Loader* loader = new Loader(); // once per process; never destroyed
    std::string_view source(reinterpret_cast<const char*>(data), size);
    scripting::LoadResult r = scripting::load_workflow(
        "fuzz", loader->cfg.workflows + "/fuzz.lua", source,
        sandbox_options(loader->cfg, *loader->services, "fuzz"), schedule::check_schedule);
    if (auto* err = std::get_if<scripting::LoadError>(&r))
        for (const scripting::LoadError& e : err->all())
            if (e.message.empty())
                fuzz::violated("a load error without a message at line " + std::to_string(e.line));
    // Whatever the load left on the loop (closed handles) goes before the next input.
    uv_run(&loader->loop, UV_RUN_NOWAIT);
    return 0;
}
