// run, executions (ps), inspect, logs, cancel, retry
#include "ctl/commands/commands.hpp"
#include "ctl/table.hpp"

#include <cstdio>
#include <fstream>
#include <sstream>

namespace luaflow::ctl {

namespace {

// Exit status of a finished execution: 0 when it succeeded, 1 otherwise.
int exit_for_report(const json& report) {
    return report.value("status", "") == "succeeded" ? kOk : kFailed;
}

std::optional<json> parse_object(const std::string& text, const std::string& what, int& rc) {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        rc = usage_error(what +
                         " is not a JSON object: " + (text.size() > 60 ? text.substr(0, 60) + "..." : text));
        return std::nullopt;
    }
    return j;
}

} // namespace

int cmd_run(const Invocation& inv) {
    std::string workflow;
    json input = json::object();
    json strings = json::object();
    bool wait = false, follow = false;
    int rc = kOk;
    for (size_t i = 0; i < inv.args.size(); ++i) {
        const std::string& a = inv.args[i];
        auto value = [&]() -> std::optional<std::string> {
            if (i + 1 >= inv.args.size()) return std::nullopt;
            return inv.args[++i];
        };
        if (a == "--input") {
            auto v = value();
            if (!v) return usage_error("--input needs a JSON object");
            auto j = parse_object(*v, "--input", rc);
            if (!j) return rc;
            input = *j;
        } else if (a == "--input-file") {
            auto v = value();
            if (!v) return usage_error("--input-file needs a file");
            std::ifstream in(*v);
            if (!in) return usage_error("cannot read --input-file " + *v);
            std::stringstream ss;
            ss << in.rdbuf();
            auto j = parse_object(ss.str(), *v, rc);
            if (!j) return rc;
            input = *j;
        } else if (a == "-i") {
            auto v = value();
            if (!v || v->find('=') == std::string::npos || v->front() == '=')
                return usage_error("-i needs KEY=VALUE");
            size_t eq = v->find('=');
            strings[v->substr(0, eq)] = v->substr(eq + 1);
        } else if (a == "--wait") {
            wait = true;
        } else if (a == "--follow") {
            follow = true;
        } else if (!a.empty() && a[0] == '-') {
            return usage_error("run: unknown option '" + a + "'");
        } else if (workflow.empty()) {
            workflow = a;
        } else {
            return usage_error("run takes one workflow id");
        }
    }
    if (workflow.empty()) return usage_error("run needs a workflow id");
    auto client = connect(inv, rc);
    if (!client) return rc;
    json params = {
        {"workflow", workflow}, {"input", input}, {"input_strings", strings}, {"wait", wait && !follow}};
    auto r = client->call("run", params);
    if (!r) return report(r.error());
    if (!wait && !follow) {
        if (inv.json)
            print_json(*r);
        else
            std::printf("%s\n", cell((*r)["id"]).c_str());
        return kOk;
    }
    if (wait && !follow) {
        if (inv.json)
            print_json(*r);
        else
            print_report(*r);
        return exit_for_report(*r);
    }
    std::string id = (*r)["id"].get<std::string>();
    auto logs = client->call("logs", {{"execution", id}, {"follow", true}}, [&](const json& line) {
        if (inv.json)
            print_json(line);
        else
            print_log_line(line);
        std::fflush(stdout);
    });
    if (!logs) return report(logs.error());
    auto final_report = client->call("wait", {{"execution", id}});
    if (!final_report) return report(final_report.error());
    if (inv.json)
        print_json(*final_report);
    else
        print_report(*final_report);
    return exit_for_report(*final_report);
}

int cmd_executions(const Invocation& inv) {
    json params = json::object();
    for (size_t i = 0; i < inv.args.size(); ++i) {
        const std::string& a = inv.args[i];
        if (i + 1 >= inv.args.size()) return usage_error(a + " needs a value");
        const std::string& v = inv.args[++i];
        if (a == "--workflow")
            params["workflow"] = v;
        else if (a == "--status")
            params["status"] = v;
        else if (a == "--limit") {
            try {
                params["limit"] = std::stoi(v);
            } catch (const std::exception&) {
                return usage_error("--limit needs a number, got '" + v + "'");
            }
        } else {
            return usage_error("executions: unknown option '" + a + "'");
        }
    }
    int rc = kOk;
    auto r = call(inv, "executions", params, rc);
    if (!r) return rc;
    if (inv.json) {
        print_json(*r);
        return kOk;
    }
    Table t({"ID", "WORKFLOW", "STATUS", "TRIGGER", "CREATED", "DURATION"});
    for (const auto& e : *r)
        t.add({cell(e["id"]), cell(e["workflow"]), status_text(cell(e["status"])), cell(e["trigger"]),
               relative_time(e["created_at"]), duration_between(e["started_at"], e["finished_at"])});
    t.print();
    return kOk;
}

int cmd_inspect(const Invocation& inv) {
    if (inv.args.size() != 1) return usage_error("inspect needs one execution id");
    int rc = kOk;
    auto r = call(inv, "inspect", {{"execution", inv.args[0]}}, rc);
    if (!r) return rc;
    if (inv.json)
        print_json(*r);
    else
        print_report(*r);
    return kOk;
}

int cmd_logs(const Invocation& inv) {
    std::string id;
    json params = json::object();
    bool follow = false;
    for (size_t i = 0; i < inv.args.size(); ++i) {
        const std::string& a = inv.args[i];
        if (a == "--action") {
            if (i + 1 >= inv.args.size()) return usage_error("--action needs a name");
            params["action"] = inv.args[++i];
        } else if (a == "--follow" || a == "-f") {
            follow = true;
        } else if (!a.empty() && a[0] == '-') {
            return usage_error("logs: unknown option '" + a + "'");
        } else if (id.empty()) {
            id = a;
        } else {
            return usage_error("logs takes one execution id");
        }
    }
    if (id.empty()) return usage_error("logs needs an execution id");
    params["execution"] = id;
    params["follow"] = follow;
    int rc = kOk;
    auto client = connect(inv, rc);
    if (!client) return rc;
    auto r = client->call("logs", params, [&](const json& line) {
        if (inv.json)
            print_json(line);
        else
            print_log_line(line);
        std::fflush(stdout);
    });
    if (!r) return report(r.error());
    if (!follow) {
        if (inv.json)
            print_json(*r);
        else
            for (const auto& line : *r)
                print_log_line(line);
    }
    return kOk;
}

static int change(const Invocation& inv, const char* method) {
    if (inv.args.size() != 1) return usage_error(std::string(method) + " needs one execution id");
    int rc = kOk;
    auto r = call(inv, method, {{"execution", inv.args[0]}}, rc);
    if (!r) return rc;
    if (inv.json)
        print_json(*r);
    else
        std::printf("%s %s\n", cell((*r)["id"]).c_str(), status_text(cell((*r)["status"])).c_str());
    return kOk;
}

int cmd_cancel(const Invocation& inv) {
    return change(inv, "cancel");
}
int cmd_retry(const Invocation& inv) {
    return change(inv, "retry");
}

} // namespace luaflow::ctl
