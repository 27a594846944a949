#pragma once
// What the standard library needs from the engine, handed over when a state is created (the way Neovim
// hands luv its loop). The stdlib knows nothing else of the daemon.
#include "scripting/task.hpp"

#include <nlohmann/json.hpp>
#include <uv.h>

#include <functional>
#include <optional>
#include <string>

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
};

} // namespace luaflow::stdlib
