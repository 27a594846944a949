#include "daemon/exec/engine_services.hpp"

#include "common/log.hpp"
#include "common/time_format.hpp"
#include "daemon/store/logs.hpp"

namespace luaflow::exec {

EngineServices::EngineServices(uv_loop_t* loop, store::Db& db, const Secrets& secrets, Watchers& watchers,
                               const Hosts& hosts, const std::map<std::string, std::string>& passed_env,
                               stdlib::ChildWorkflows& children, notifiers::Outbox& outbox)
    : loop_(loop), db_(db), secrets_(secrets), watchers_(watchers), hosts_(hosts), passed_env_(passed_env),
      children_(children), notifications_(db, outbox, secrets) {}

Result<void> OutboxNotifications::notify(const scripting::TaskLabel& from, const std::string& notifier,
                                         const std::string& subject, const std::string& body) {
    notifiers::Message m;
    m.event = "notify";
    m.workflow = from.workflow;
    m.execution = from.execution;
    m.action = from.action;
    m.time_ms = now_unix_ms();
    m.subject = secrets_.redact(subject);
    m.body = secrets_.redact(body);
    auto added = outbox_.notify(db_.write(), notifier, std::move(m));
    if (added && on_added_) on_added_(from.execution);
    return added;
}

void EngineServices::job_log(const std::string& execution, const std::string& action, int attempt,
                             const char* stream, std::string line) {
    store::LogLine row{
        0, execution, action, attempt, now_unix_ms(), stream, secrets_.redact(std::move(line))};
    store::append_log(db_.write(), row);
    watchers_.lines_added(execution);
    if (echo_) echo_(execution, action, attempt, stream, row.line);
}

void EngineServices::log_line(const scripting::Task* task, const std::string& workflow,
                              stdlib::LogLevel level, const std::string& line) {
    std::string text =
        level == stdlib::LogLevel::info ? line : std::string(stdlib::to_string(level)) + ": " + line;
    if (!task) {
        log::info("workflow %s: %s", workflow.c_str(), secrets_.redact(std::move(text)).c_str());
        return;
    }
    const scripting::TaskLabel& l = task->label();
    job_log(l.execution, l.action, l.attempt, "log", std::move(text));
}

loop::CurlMulti* EngineServices::curl() {
    if (!curl_) {
        auto api = loop::curl_api();
        if (!api) return nullptr; // http.* reports why (it asked curl_api() first)
        curl_ = std::make_unique<loop::CurlMulti>(loop_, **api);
    }
    return curl_.get();
}

std::map<std::string, std::string> EngineServices::exec_environment() {
    // exec() runs on this machine and holds no GPU: with GPUs here it sees none (SPEC 3).
    std::map<std::string, std::string> env = passed_env_;
    if (hosts_.has_gpus("local")) env["CUDA_VISIBLE_DEVICES"] = "";
    return env;
}

} // namespace luaflow::exec
