#pragma once
// What the Lua standard library sees of the engine (stdlib::Services): log.* into the job's log, kv.*
// in the store, env() with secrets, exec()'s environment, fs.*'s paths, http.*'s curl multi and
// workflows.run. The executor hands it to every sandbox it makes.
#include "daemon/exec/hosts.hpp"
#include "daemon/exec/secrets.hpp"
#include "daemon/exec/store_key_value.hpp"
#include "daemon/exec/watchers.hpp"
#include "daemon/store/db.hpp"
#include "loop/curl_multi.hpp"
#include "notifiers/outbox.hpp"
#include "stdlib/services.hpp"

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace luaflow::exec {

// notify(): the outbox, with the secrets masked in what goes out.
class OutboxNotifications final : public stdlib::Notifications {
  public:
    OutboxNotifications(store::Db& db, notifiers::Outbox& outbox, const Secrets& secrets)
        : db_(db), outbox_(outbox), secrets_(secrets) {}
    Result<void> notify(const scripting::TaskLabel& from, const std::string& notifier,
                        const std::string& subject, const std::string& body) override;
    void when_durable(std::function<void()> fn) override { db_.after_commit(std::move(fn)); }
    // Told of each execution a notification row was added for (its report lists them).
    void on_added(std::function<void(const std::string& execution)> fn) { on_added_ = std::move(fn); }

  private:
    std::function<void(const std::string& execution)> on_added_;
    store::Db& db_;
    notifiers::Outbox& outbox_;
    const Secrets& secrets_;
};

class EngineServices final : public stdlib::Services {
  public:
    // Every reference outlives the services (the executor owns them all).
    EngineServices(uv_loop_t* loop, store::Db& db, const Secrets& secrets, Watchers& watchers,
                   const Hosts& hosts, const std::map<std::string, std::string>& passed_env,
                   stdlib::ChildWorkflows& children, notifiers::Outbox& outbox);

    void set_sandbox_paths(std::vector<std::string> paths) { sandbox_paths_ = std::move(paths); }
    // A line of an attempt's log, secrets masked; its watchers hear of it after the commit.
    void job_log(const std::string& execution, const std::string& action, int attempt, const char* stream,
                 std::string line);
    // luaflowctl test (SPEC 13): every such line is also handed here as it is written (masked).
    using LogEcho = std::function<void(const std::string& execution, const std::string& action, int attempt,
                                       const char* stream, const std::string& line)>;
    void echo_logs(LogEcho echo) { echo_ = std::move(echo); }
    // Told of each execution a notify() call added a notification row for.
    void on_notification_added(std::function<void(const std::string& execution)> fn) {
        notifications_.on_added(std::move(fn));
    }

    uv_loop_t* loop() override { return loop_; }
    void log_line(const scripting::Task* task, const std::string& workflow, stdlib::LogLevel level,
                  const std::string& line) override;
    stdlib::KeyValue* kv() override { return &kv_; }
    std::optional<std::string> env_var(const std::string& name) override { return secrets_.lookup(name); }
    std::map<std::string, std::string> exec_environment() override;
    std::vector<std::string> sandbox_paths() override { return sandbox_paths_; }
    // Made by the first http.* call, which loaded libcurl (loop/curl_api.hpp); nullptr without libcurl.
    loop::CurlMulti* curl() override;
    stdlib::ChildWorkflows* children() override { return &children_; }
    stdlib::Notifications* notifications() override { return &notifications_; }

  private:
    uv_loop_t* loop_;
    LogEcho echo_;
    // The attempts' transfers are gone before the services (the executor ends its attempts first). None
    // until a workflow makes a request: an idle daemon does not load libcurl.
    std::unique_ptr<loop::CurlMulti> curl_;
    store::Db& db_;
    StoreKeyValue kv_{db_};
    const Secrets& secrets_;
    Watchers& watchers_;
    const Hosts& hosts_;
    const std::map<std::string, std::string>& passed_env_;
    stdlib::ChildWorkflows& children_;
    OutboxNotifications notifications_;
    std::vector<std::string> sandbox_paths_;
};

} // namespace luaflow::exec
