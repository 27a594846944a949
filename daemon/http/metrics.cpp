#include "daemon/http/metrics.hpp"

#include <sys/stat.h>

#include <charconv>
#include <cmath>

namespace luaflow::http {

namespace {

// A label value with \, " and newline escaped (the format's only escapes).
std::string label(const std::string& v) {
    std::string out;
    for (char c : v) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out;
}

std::string number(double v) {
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    char buf[64];
    auto end = std::to_chars(buf, buf + sizeof buf, v).ptr; // the shortest text that reads back as v
    return std::string(buf, end);
}

class Writer {
  public:
    void family(const char* name, const char* type, const char* help) {
        text_ += "# HELP ";
        text_ += name;
        text_ += ' ';
        text_ += help;
        text_ += "\n# TYPE ";
        text_ += name;
        text_ += ' ';
        text_ += type;
        text_ += '\n';
    }
    // `labels` is `k="v",k2="v2"` (escaped) or empty.
    void sample(const std::string& name, const std::string& labels, double value) {
        text_ += name;
        if (!labels.empty()) text_ += "{" + labels + "}";
        text_ += ' ';
        text_ += number(value);
        text_ += '\n';
    }
    void histogram(const std::string& name, const std::string& labels, const Histogram& h) {
        const std::string sep = labels.empty() ? "" : ",";
        for (std::size_t i = 0; i < h.bounds().size(); ++i)
            sample(name + "_bucket", labels + sep + "le=\"" + number(h.bounds()[i]) + "\"",
                   static_cast<double>(h.counts()[i]));
        sample(name + "_bucket", labels + sep + "le=\"+Inf\"", static_cast<double>(h.count()));
        sample(name + "_sum", labels, h.sum());
        sample(name + "_count", labels, static_cast<double>(h.count()));
    }
    std::string take() { return std::move(text_); }

  private:
    std::string text_;
};

double file_size(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? static_cast<double>(st.st_size) : 0;
}

} // namespace

std::string metrics_text(control::Context& ctx, const std::string& state_dir) {
    Writer w;
    const exec::Metrics& m = ctx.executor.metrics();
    w.family("luaflow_executions_total", "counter",
             "Executions that ended since the daemon started, by status.");
    for (const auto& [workflow, wm] : m.workflows)
        for (const auto& [status, n] : wm.executions)
            w.sample("luaflow_executions_total",
                     "workflow=\"" + label(workflow) + "\",status=\"" + status + "\"",
                     static_cast<double>(n));
    w.family("luaflow_actions_total", "counter", "Actions that ended since the daemon started, by status.");
    for (const auto& [workflow, wm] : m.workflows)
        for (const auto& [status, n] : wm.actions)
            w.sample("luaflow_actions_total",
                     "workflow=\"" + label(workflow) + "\",status=\"" + status + "\"",
                     static_cast<double>(n));
    w.family("luaflow_execution_duration_seconds", "histogram",
             "How long executions that ended since the daemon started ran, from their start.");
    for (const auto& [workflow, wm] : m.workflows)
        w.histogram("luaflow_execution_duration_seconds", "workflow=\"" + label(workflow) + "\"",
                    wm.duration);
    w.family("luaflow_schedule_lateness_seconds", "histogram",
             "How long after their scheduled time scheduled runs started, since the daemon started.");
    w.histogram("luaflow_schedule_lateness_seconds", "", ctx.scheduler.lateness().histogram());

    w.family("luaflow_executions_running", "gauge", "Executions running now.");
    std::vector<std::pair<std::string, exec::Counts>> counts;
    for (const auto& [id, entry] : ctx.registry.all())
        counts.emplace_back(id, ctx.executor.counts(id));
    for (const auto& [id, c] : counts)
        w.sample("luaflow_executions_running", "workflow=\"" + label(id) + "\"", c.running);
    w.family("luaflow_executions_queued", "gauge", "Executions waiting for their workflow's concurrency.");
    for (const auto& [id, c] : counts)
        w.sample("luaflow_executions_queued", "workflow=\"" + label(id) + "\"", c.queued);
    exec::ActionCounts a = ctx.executor.action_counts();
    w.family("luaflow_actions_running", "gauge", "Actions with an attempt in flight now.");
    w.sample("luaflow_actions_running", "", static_cast<double>(a.running));
    w.family("luaflow_actions_waiting", "gauge",
             "Actions waiting for a queue slot or a host's resources now.");
    w.sample("luaflow_actions_waiting", "", static_cast<double>(a.waiting));
    w.family("luaflow_queue_depth", "gauge", "Actions waiting per queue now.");
    for (const auto& [queue, n] : a.waiting_by_queue)
        w.sample("luaflow_queue_depth", "queue=\"" + label(queue) + "\"", static_cast<double>(n));

    const auto& notified = ctx.outbox.counts();
    w.family("luaflow_notifications_total", "counter",
             "Notifications that reached an end since the daemon started, by notifier and status: sent, or "
             "failed for good after 24 h of attempts.");
    for (const auto& [notifier, c] : notified) {
        w.sample("luaflow_notifications_total", "notifier=\"" + label(notifier) + "\",status=\"sent\"",
                 static_cast<double>(c.sent));
        w.sample("luaflow_notifications_total", "notifier=\"" + label(notifier) + "\",status=\"failed\"",
                 static_cast<double>(c.failed));
    }
    w.family("luaflow_notification_attempts_failed_total", "counter",
             "Delivery attempts that failed and will be retried, since the daemon started, by notifier.");
    for (const auto& [notifier, c] : notified)
        w.sample("luaflow_notification_attempts_failed_total", "notifier=\"" + label(notifier) + "\"",
                 static_cast<double>(c.retried));
    w.family("luaflow_notifications_pending", "gauge",
             "Notifications waiting to be delivered now, by notifier.");
    for (const auto& [notifier, c] : notified)
        w.sample("luaflow_notifications_pending", "notifier=\"" + label(notifier) + "\"",
                 static_cast<double>(c.pending));

    w.family("luaflow_workflows", "gauge",
             "Workflows loaded, and of them those whose file does not load now.");
    double errors = ctx.registry.error_count();
    w.sample("luaflow_workflows", "state=\"loaded\"",
             static_cast<double>(ctx.registry.all().size()) - errors);
    w.sample("luaflow_workflows", "state=\"error\"", errors);
    w.family("luaflow_lua_states", "gauge",
             "Workflows with a Lua state in memory now (one in use keeps it).");
    w.sample("luaflow_lua_states", "", static_cast<double>(ctx.registry.codes().size()));
    w.family("luaflow_lua_memory_bytes", "gauge", "Memory of the Lua states in memory now, by workflow.");
    for (const auto& [workflow, bytes] : ctx.registry.codes().memory_by_workflow())
        w.sample("luaflow_lua_memory_bytes", "workflow=\"" + label(workflow) + "\"",
                 static_cast<double>(bytes));
    w.family("luaflow_store_bytes", "gauge", "Size of the SQLite store: its file and its write-ahead log.");
    w.sample("luaflow_store_bytes", "file=\"db\"", file_size(state_dir + "/luaflow.db"));
    w.sample("luaflow_store_bytes", "file=\"wal\"", file_size(state_dir + "/luaflow.db-wal"));
    w.family("luaflow_store_commits_total", "counter", "SQLite commits since the daemon started.");
    w.sample("luaflow_store_commits_total", "", static_cast<double>(ctx.db.commits()));
    return w.take();
}

} // namespace luaflow::http
