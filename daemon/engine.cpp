#include "daemon/engine.hpp"

#include "daemon/schedule/check.hpp"
#include "stdlib/stdlib.hpp"

namespace luaflow {

scripting::SandboxOptions sandbox_options(const config::Config& config, stdlib::Services& services,
                                          const std::string& workflow) {
    scripting::SandboxOptions o;
    o.memory_limit = config.sandbox.memory;
    o.allow_exec = config.sandbox.exec;
    if (config.notifiers_known) {
        auto names = std::make_shared<std::set<std::string>>();
        for (const auto& [name, n] : config.notifiers)
            names->insert(name);
        o.notifiers = std::move(names);
    }
    o.workflows_dir = config.workflows;
    o.install_globals = [&services, workflow](lua_State* L, int env) {
        stdlib::install(L, env, services, workflow);
    };
    return o;
}

Engine::Engine(uv_loop_t* loop, store::Db& db, const config::Config& config)
    : pump(loop, db), tasks(loop),
      // The registry's sandboxes get the executor's services: the executor is built next, and nothing
      // loads before the constructor returns.
      registry(
          loop, db, config.workflows,
          [this, &config](const std::string& id) { return sandbox_options(config, executor.services(), id); },
          schedule::check_schedule),
      outbox(loop, db, config), executor(loop, db, registry, tasks, config, outbox) {}

} // namespace luaflow
