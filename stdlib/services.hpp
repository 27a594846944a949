#pragma once
// What the standard library needs from the engine, handed over when a state is created (the way Neovim
// hands luv its loop). The stdlib knows nothing else of the daemon.
#include "common/result.hpp"
#include "scripting/task.hpp"

#include <nlohmann/json.hpp>
#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace luaflow::loop {
class CurlMulti;
}

namespace luaflow::stdlib {

enum class LogLevel { debug, info, warn, error };
const char* to_string(LogLevel level);

// The durable key-value store behind kv.* (SPEC 3). `scope` is a workflow id, or "" for kv.global.
class KeyValue {
  public:
    virtual ~KeyValue() = default;
    virtual std::optional<nlohmann::json> get(const std::string& scope, const std::string& key) = 0;
    virtual void set(const std::string& scope, const std::string& key, const nlohmann::json& value) = 0;
    // False when there was no such key.
    virtual bool erase(const std::string& scope, const std::string& key) = 0;
    // Calls fn once everything written so far is committed.
    virtual void when_durable(std::function<void()> fn) = 0;
};

// Child executions behind workflows.run (SPEC 3).
class ChildWorkflows {
  public:
    virtual ~ChildWorkflows() = default;
    // Starts a child execution of `workflow` for the task's action, or, in a retried attempt, hands back
    // the child the same call of an earlier attempt started (same workflow and input, not failed).
    // Returns the child's execution id, or an error that names what is wrong.
    virtual Result<std::string> start_child(const scripting::Task& task, const std::string& workflow,
                                            const nlohmann::json& input) = 0;
    // Calls fn with the child's report once it has ended and that is committed (at once if it has).
    // fn runs from the store's commit callback: a caller resumes a task only from a later callback.
    virtual Result<void> wait_child(const std::string& child,
                                    std::function<void(const nlohmann::json&)> fn) = 0;
};

// notify() (SPEC 3 and 8): a message to a notifier of the config, written to the outbox.
class Notifications {
  public:
    virtual ~Notifications() = default;
    // Writes the row for the task's execution into the turn's transaction; an error naming `notifier`
    // when the config has none of that name.
    virtual Result<void> notify(const scripting::TaskLabel& from, const std::string& notifier,
                                const std::string& subject, const std::string& body) = 0;
    // Calls fn once everything written so far is committed.
    virtual void when_durable(std::function<void()> fn) = 0;
};

class Services {
  public:
    virtual ~Services() = default;
    virtual uv_loop_t* loop() = 0;
    // A line from log.* : into the job's log when `task` is set, else into the daemon's log
    // (code running at load time) naming `workflow`.
    virtual void log_line(const scripting::Task* task, const std::string& workflow, LogLevel level,
                          const std::string& line) = 0;
    // The key-value store; none where nothing is kept (luaflowd --check).
    virtual KeyValue* kv() { return nullptr; }
    // env(name): a variable of env.pass or a secret of env.secrets; nothing otherwise.
    virtual std::optional<std::string> env_var(const std::string&) { return std::nullopt; }
    // http.*: the loop's libcurl multi handle; none where no requests may be made.
    virtual loop::CurlMulti* curl() { return nullptr; }
    // exec(): the environment a program starts with (the variables of env.pass), before the call's `env`.
    virtual std::map<std::string, std::string> exec_environment() { return {}; }
    // fs.*: the directories, besides the job's scratch directory, that scripts may use (sandbox.paths).
    virtual std::vector<std::string> sandbox_paths() { return {}; }
    // workflows.run; none where no executions are kept.
    virtual ChildWorkflows* children() { return nullptr; }
    // notify(); none where nothing is kept (luaflowd --check).
    virtual Notifications* notifications() { return nullptr; }
};

} // namespace luaflow::stdlib
