#pragma once
// The engine's parts, wired in one order for the daemon, `luaflowd --offline` (test) and the unit tests
// (issue 15): the commit pump over the store, the run queue of Lua tasks, the registry of workflow files
// (each loaded with its schedule checked) and the executor, which gives the registry's sandboxes their
// standard library. What only the daemon has (the socket, the scheduler, the checkpointer, the disk
// watch, signals) is wired around it in app.cpp.
#include "daemon/config/config.hpp"
#include "daemon/exec/executor.hpp"
#include "daemon/registry/registry.hpp"
#include "daemon/store/commit_pump.hpp"
#include "notifiers/outbox.hpp"
#include "scripting/lua_state.hpp"
#include "scripting/task.hpp"
#include "stdlib/services.hpp"

#include <string>

namespace luaflow {

// A workflow's sandbox: the config's limits, with the standard library installed over `services`.
scripting::SandboxOptions sandbox_options(const config::Config& config, stdlib::Services& services,
                                          const std::string& workflow);

struct Engine {
    // `config` is read at every load (the daemon's reload replaces its contents): it outlives the engine.
    Engine(uv_loop_t* loop, store::Db& db, const config::Config& config);
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    store::CommitPump pump;
    scripting::RunQueue tasks;
    registry::Registry registry;
    notifiers::Outbox outbox; // sends nothing until started (the daemon, once recovered)
    exec::Executor executor;  // last: it uses the others, and goes first
};

} // namespace luaflow
