#include "daemon/http/routes.hpp"

#include "common/json_depth.hpp"
#include "common/json_parse.hpp"
#include "common/log.hpp"
#include "common/read_source_file.hpp"
#include "common/utf8.hpp"
#include "daemon/http/metrics.hpp"
#include "loop/uv_handle.hpp"

#include "loop/thread_pool.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <unistd.h>

#include <cctype>
#include <charconv>
#include <vector>

namespace luaflow::http {

using nlohmann::json;

namespace {

constexpr const char* kJson = "application/json";

int status_of(ErrorCode code) {
    switch (code) {
    case ErrorCode::invalid:
        return 400;
    case ErrorCode::not_found:
        return 404;
    case ErrorCode::conflict:
        return 409;
    case ErrorCode::unavailable:
        return 503;
    case ErrorCode::internal:
        return 500;
    }
    return 500;
}

std::string error_body(const std::string& message) {
    return json{{"error", message}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

// A socket handler's answer as an HTTP response: the result with `ok` (200, or 201 for a creation), an
// error with the status its code maps to. Streams are not asked of it by the endpoints here.
class HttpReply final : public control::Reply {
  public:
    HttpReply(std::shared_ptr<Response> response, int ok) : response_(std::move(response)), ok_(ok) {}

    void result(const json& value) override {
        response_->send(ok_, kJson, value.dump(-1, ' ', false, json::error_handler_t::replace));
    }
    void result_text(std::string text) override { response_->send(ok_, kJson, std::move(text)); }
    void error(const Error& e) override { response_->send(status_of(e.code), kJson, error_body(e.message)); }
    void event(const json&) override {}
    void events(const std::vector<json>&) override {}
    void open_result_array() override { array_.assign(1, '['); }
    void add_result_elements(const std::vector<json>& values) override {
        for (const json& v : values) {
            if (array_.size() > 1) array_ += ',';
            array_ += v.dump(-1, ' ', false, json::error_handler_t::replace);
        }
    }
    void close_result_array() override {
        array_ += ']';
        response_->send(ok_, kJson, std::move(array_));
    }
    void when_drained(std::function<void()> fn) override { fn(); }
    bool alive() const override { return response_->alive(); }
    void on_gone(std::function<void()>) override {}

  private:
    std::shared_ptr<Response> response_;
    int ok_;
    std::string array_;
};

// The `logs` handler's answer as a stream: plain text lines ("TIME  ACTION#ATTEMPT  STREAM  LINE", as
// luaflowctl logs prints them) for the log so far, or Server-Sent Events (one `data:` event per line as it
// is committed, then `event: end` with the summary) with follow.
class LogsReply final : public control::Reply {
  public:
    LogsReply(std::shared_ptr<Response> response, bool events)
        : response_(std::move(response)), sse_(events) {}

    void event(const json& value) override { events({value}); }
    void events(const std::vector<json>& values) override {
        start();
        std::string out;
        for (const json& v : values)
            out += "data: " + v.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
        response_->write(std::move(out));
    }
    void result(const json& value) override { // the summary that ends a stream of events
        start();
        response_->write("event: end\ndata: " + value.dump(-1, ' ', false, json::error_handler_t::replace) +
                         "\n\n");
        response_->end();
    }
    void result_text(std::string text) override { result(json::parse(text, nullptr, false)); }
    void error(const Error& e) override {
        if (!started_) return response_->send(status_of(e.code), kJson, error_body(e.message));
        if (sse_) response_->write("event: error\ndata: " + error_body(e.message) + "\n\n");
        response_->end();
    }
    void open_result_array() override { start(); }
    void add_result_elements(const std::vector<json>& values) override {
        std::string out;
        for (const json& l : values) {
            std::string who = l.value("action", json()).is_string() ? l["action"].get<std::string>() : "-";
            if (l.value("attempt", json()).is_number_integer()) who += "#" + l["attempt"].dump();
            out += l.value("time", "") + "  " + who + "  " + l.value("stream", "") + "  " +
                   l.value("line", "") + "\n";
        }
        response_->write(std::move(out));
    }
    void close_result_array() override { response_->end(); }
    void when_drained(std::function<void()> fn) override { response_->when_drained(std::move(fn)); }
    bool alive() const override { return response_->alive(); }
    void on_gone(std::function<void()> fn) override { response_->on_gone(std::move(fn)); }

  private:
    void start() {
        if (std::exchange(started_, true)) return;
        response_->start_stream(200, sse_ ? "text/event-stream" : "text/plain; charset=utf-8");
    }

    std::shared_ptr<Response> response_;
    bool sse_;
    bool started_ = false;
};

// A run's refusal (run_execution with `submitted`, for `?wait=`): the answer to the client; the run's id
// goes to `submitted` instead of a result.
class FailureReply final : public control::Reply {
  public:
    explicit FailureReply(std::function<void(const Error&)> failed) : failed_(std::move(failed)) {}
    void result(const json&) override {}
    void result_text(std::string) override {}
    void error(const Error& e) override { failed_(e); }
    void event(const json&) override {}
    void events(const std::vector<json>&) override {}
    void open_result_array() override {}
    void add_result_elements(const std::vector<json>&) override {}
    void close_result_array() override {}
    void when_drained(std::function<void()> fn) override { fn(); }
    bool alive() const override { return true; }
    void on_gone(std::function<void()>) override {}

  private:
    std::function<void(const Error&)> failed_;
};

std::vector<std::string> segments(const std::string& path) {
    std::vector<std::string> out;
    std::size_t at = 1;
    while (at <= path.size()) {
        std::size_t slash = path.find('/', at);
        if (slash == std::string::npos) slash = path.size();
        if (slash > at) out.push_back(path.substr(at, slash - at));
        at = slash + 1;
    }
    return out;
}

int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

std::string decode(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '+') {
            out += ' ';
        } else if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
            out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

} // namespace

std::optional<std::string> query_value(const std::string& query, const std::string& key) {
    std::size_t at = 0;
    while (at <= query.size()) {
        std::size_t amp = query.find('&', at);
        if (amp == std::string::npos) amp = query.size();
        std::string_view pair(query.data() + at, amp - at);
        std::size_t eq = pair.find('=');
        if (decode(pair.substr(0, eq)) == key)
            return eq == std::string_view::npos ? std::string() : decode(pair.substr(eq + 1));
        at = amp + 1;
    }
    return std::nullopt;
}

ApiRoutes::ApiRoutes(control::Context& ctx, std::string state_dir)
    : ctx_(ctx), socket_(control::make_handler(ctx)), state_dir_(std::move(state_dir)) {}

void ApiRoutes::handle(Request request, std::shared_ptr<Response> response) {
    const std::vector<std::string> parts = segments(request.path);
    const std::string& method = request.method;
    auto call = [&](const char* socket_method, json params, int ok = 200) {
        socket_(socket_method, params, std::make_shared<HttpReply>(response, ok));
    };
    auto wrong_method = [&](const char* allowed) {
        response->send(405, kJson, error_body(method + " " + request.path + ": use " + allowed));
    };
    if (parts == std::vector<std::string>{"healthz"}) {
        if (method != "GET") return wrong_method("GET");
        return response->send(200, kJson, R"({"status":"ok"})");
    }
    if (parts == std::vector<std::string>{"metrics"}) {
        if (method != "GET") return wrong_method("GET");
        return response->send(200, "text/plain; version=0.0.4; charset=utf-8",
                              metrics_text(ctx_, state_dir_));
    }
    if (parts.size() >= 2 && parts[0] == "v1" && parts[1] == "workflows") {
        if (parts.size() == 2) {
            if (method != "GET") return wrong_method("GET");
            return call("list", json::object());
        }
        if (parts.size() == 3) {
            if (method == "PUT") return put_workflow(parts[2], request, response);
            if (method == "DELETE") return delete_workflow(parts[2], response);
            if (method != "GET") return wrong_method("GET, PUT or DELETE");
            return call("show", {{"workflow", parts[2]}});
        }
        if (parts.size() == 4 && parts[3] == "executions") {
            if (method != "POST") return wrong_method("POST");
            return run(parts[2], request, response);
        }
    }
    if (parts.size() >= 2 && parts[0] == "v1" && parts[1] == "executions") {
        if (parts.size() == 2) {
            if (method != "GET") return wrong_method("GET");
            json params = json::object();
            for (const char* key : {"workflow", "status"})
                if (auto v = query_value(request.query, key)) params[key] = *v;
            if (auto v = query_value(request.query, "limit")) {
                // The whole value (a decoded %00 ends no number here), digits only.
                long n = 0;
                auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
                if (v->empty() || ec != std::errc() || end != v->data() + v->size() || n < 1 || n > 1'000'000)
                    return response->send(400, kJson,
                                          error_body("limit must be a positive integer, got '" + *v + "'"));
                params["limit"] = static_cast<std::uint64_t>(n);
            }
            return call("executions", params);
        }
        if (parts.size() == 3) {
            if (method != "GET") return wrong_method("GET");
            return call("inspect", {{"execution", parts[2]}});
        }
        if (parts.size() == 4 && parts[3] == "logs") {
            if (method != "GET") return wrong_method("GET");
            auto follow = query_value(request.query, "follow");
            bool events = follow && *follow != "0" && *follow != "false";
            json params = {{"execution", parts[2]}, {"follow", events}};
            if (auto action = query_value(request.query, "action")) params["action"] = *action;
            return socket_("logs", params, std::make_shared<LogsReply>(response, events));
        }
        if (parts.size() == 4 && parts[3] == "cancel") {
            if (method != "POST") return wrong_method("POST");
            return call("cancel", {{"execution", parts[2]}});
        }
    }
    if (parts.size() == 2 && parts[0] == "hooks") {
        if (method != "POST") return wrong_method("POST");
        return hook(parts[1], request, response);
    }
    response->send(404, kJson, error_body("no endpoint " + method + " " + request.path));
}

// The `?wait=DURATION` of a request, or the 400 it gets.
std::optional<Millis> ApiRoutes::wait_of(const Request& request, const std::shared_ptr<Response>& response,
                                         bool& bad) {
    bad = false;
    auto w = query_value(request.query, "wait");
    if (!w) return std::nullopt;
    auto wait = parse_duration(*w);
    if (!wait || *wait < 0 || *wait > kMaxWait) {
        bad = true;
        response->send(400, kJson,
                       error_body("wait: expected a duration up to 1h such as 30s, got '" + *w + "'"));
        return std::nullopt;
    }
    return wait;
}

// Starts the run; without `wait` answers `created` with its id, with it waits for the end: 200 with the
// report (or, with `respond`, that action's output) when it ends in time, else 202 with the id (SPEC 7).
void ApiRoutes::start(json params, json trigger, std::optional<Millis> wait,
                      std::optional<std::string> respond, int created,
                      const std::shared_ptr<Response>& response) {
    if (!wait)
        return control::run_execution(ctx_, params, std::move(trigger),
                                      std::make_shared<HttpReply>(response, created));
    auto started = [this, response, wait = *wait, respond = std::move(respond)](const std::string& id) {
        auto timer = std::make_shared<loop::Timer>(ctx_.loop);
        auto finished =
            ctx_.executor.when_finished(id, [response, timer, respond](const exec::EndReport& end) {
                timer->stop();
                if (!respond) return response->send(200, kJson, end.text());
                const json& report = end.doc();
                // The named action's output; a run that did not get it through is the server's failure.
                const json& action = report["actions"].value(*respond, json::object());
                if (action.value("status", "") != "succeeded")
                    return response->send(500, kJson,
                                          json{{"error", "execution " + report.value("id", "") + " " +
                                                             report.value("status", "") +
                                                             " without action '" + *respond + "' succeeding"},
                                               {"id", report.value("id", "")},
                                               {"status", report.value("status", "")}}
                                              .dump(-1, ' ', false, json::error_handler_t::replace));
                response->send(
                    200, kJson,
                    action.value("output", json()).dump(-1, ' ', false, json::error_handler_t::replace));
            });
        if (!finished)
            return response->send(status_of(finished.error().code), kJson,
                                  error_body(finished.error().message));
        // From the commit of the submission: a 202 names an execution the store has. An end in the same
        // turn comes after this in the commit's callbacks, and stops the timer.
        ctx_.db.after_commit([timer, response, id, wait] {
            // The timer holds the response, not itself: it goes with the waiter's callback.
            timer->start(static_cast<std::uint64_t>(wait), [response, id] {
                response->send(202, kJson, json{{"id", id}}.dump());
            });
        });
    };
    auto failed = [response](const Error& e) {
        response->send(status_of(e.code), kJson, error_body(e.message));
    };
    control::run_execution(ctx_, params, std::move(trigger), std::make_shared<FailureReply>(failed), started);
}

// POST /v1/workflows/{id}/executions: the body is the input; 201 {"id"}, or with ?wait= as start().
void ApiRoutes::run(const std::string& workflow, Request& request,
                    const std::shared_ptr<Response>& response) {
    json input = json::object();
    if (!request.body.empty()) {
        // Bounded: a document nested 100 000 deep would overflow the stack wherever it was copied next.
        auto parsed = parse_json_bounded(request.body);
        if (!parsed)
            return response->send(400, kJson,
                                  error_body("the body must be a JSON object (the input), or empty: " +
                                             parsed.error().message));
        if (!parsed->is_object())
            return response->send(400, kJson,
                                  error_body("the body must be a JSON object (the input), or empty"));
        input = std::move(parsed.value());
    }
    bool bad = false;
    auto wait = wait_of(request, response, bad);
    if (bad) return;
    start({{"workflow", workflow}, {"input", std::move(input)}}, {{"type", "api"}}, wait, std::nullopt, 201,
          response);
}

// POST /hooks/{workflow}: the webhook trigger (SPEC 7). A JSON object body is the input, anything else
// { body = "..." }; with a secret, X-Luaflow-Signature must be the body's HMAC-SHA256; 202 {"id"}, or with
// ?wait= as start() (with the trigger's `respond`).
void ApiRoutes::hook(const std::string& workflow, Request& request,
                     const std::shared_ptr<Response>& response) {
    const registry::WorkflowEntry* entry = ctx_.registry.find(workflow);
    if (!entry || !entry->def)
        return response->send(404, kJson, error_body("no workflow '" + workflow + "'"));
    const json& trigger = entry->def->triggers.webhook;
    if (!trigger.is_object())
        return response->send(
            404, kJson, error_body("workflow '" + workflow + "' has no webhook trigger (triggers.webhook)"));
    if (!trigger.contains("secret_file"))
        return accept_hook(workflow, trigger, trigger.value("secret", ""), request, response);
    // The secret file is read on the thread pool (blocking I/O), then the request goes on.
    std::filesystem::path file = trigger["secret_file"].get<std::string>();
    if (file.is_relative()) file = std::filesystem::path(ctx_.registry.dir()) / file;
    auto secret = std::make_shared<Result<std::string>>(std::string());
    auto held = std::make_shared<Request>(std::move(request));
    std::weak_ptr<int> alive = alive_;
    auto queued = loop::run_in_pool(
        ctx_.loop, [path = file.string(), secret] { *secret = read_source_file(path, 64 * 1024); },
        [this, alive, workflow, trigger, path = file.string(), secret, held, response] {
            if (alive.expired()) return;
            if (!*secret) {
                log::error("workflow %s: webhook: %s", workflow.c_str(), secret->error().message.c_str());
                return response->send(500, kJson,
                                      error_body("workflow '" + workflow + "': its webhook secret_file " +
                                                 path + " cannot be read"));
            }
            std::string text = std::move(secret->value());
            while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
                text.pop_back();
            accept_hook(workflow, trigger, text, *held, response);
        });
    if (!queued) response->send(503, kJson, error_body(queued.error().message));
}

// A webhook request once its secret is known: the signature's check, the input, the run.
void ApiRoutes::accept_hook(const std::string& workflow, const json& trigger, const std::string& secret,
                            Request& request, const std::shared_ptr<Response>& response) {
    if (trigger.contains("secret") || trigger.contains("secret_file")) {
        if (request.signature.empty())
            return response->send(
                401, kJson,
                error_body("this webhook needs X-Luaflow-Signature: sha256=<hex HMAC-SHA256 of "
                           "the body with its secret>"));
        if (!server_ || !server_->signature_matches(secret, request.body, request.signature))
            return response->send(401, kJson, error_body("X-Luaflow-Signature does not match the body"));
    }
    json input;
    if (auto parsed = parse_json_bounded(request.body); parsed && parsed->is_object()) {
        input = std::move(parsed.value());
    } else if (!parsed && json_nesting_exceeds(request.body, protocol::kMaxJsonDepth)) {
        // JSON too deep to be an input (SPEC 3), not text that happens not to be JSON.
        return response->send(400, kJson, error_body("the body: " + parsed.error().message));
    } else {
        // JSON text (the store's, the report's) holds UTF-8 only: a binary body cannot be `body`.
        if (std::size_t at = invalid_utf8_at(request.body); at != std::string::npos)
            return response->send(415, kJson,
                                  error_body("the body is neither a JSON object nor UTF-8 text (" +
                                             describe_invalid_utf8(request.body, at) +
                                             "); send binary data encoded, e.g. as base64 in a JSON "
                                             "object"));
        input = {{"body", request.body}};
    }
    bool bad = false;
    auto wait = wait_of(request, response, bad);
    if (bad) return;
    std::optional<std::string> respond;
    if (trigger.contains("respond")) respond = trigger["respond"].get<std::string>();
    start({{"workflow", workflow}, {"input", std::move(input)}}, {{"type", "webhook"}}, wait, respond, 202,
          response);
}

namespace {

// Writes `text` to `path` so that a reader sees the old file or the new one, never a part: a temporary
// file in the same directory, flushed to the disk, renamed over it. An error's message, or empty.
std::string write_atomically(const std::string& path, const std::string& text) {
    std::string dir = path.substr(0, path.rfind('/'));
    // Not a *.lua name: the directory's scan must not take it for a workflow.
    std::string tmp = dir + "/." + path.substr(dir.size() + 1) + ".luaflow-put-" + std::to_string(::getpid());
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return "cannot write " + tmp + ": " + std::strerror(errno);
    std::size_t done = 0;
    while (done < text.size()) {
        ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            std::string e = "cannot write " + tmp + ": " + std::strerror(errno);
            ::close(fd);
            ::unlink(tmp.c_str());
            return e;
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
        std::string e = "cannot write " + tmp + ": " + std::strerror(errno);
        ::unlink(tmp.c_str());
        return e;
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        std::string e = "cannot rename " + tmp + " to " + path + ": " + std::strerror(errno);
        ::unlink(tmp.c_str());
        return e;
    }
    if (int d = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); d >= 0) { // the rename, durable
        ::fsync(d);
        ::close(d);
    }
    return {};
}

json errors_json(const std::vector<scripting::LoadError>& errors) {
    json out = json::array();
    for (const scripting::LoadError& e : errors)
        out.push_back({{"file", e.file}, {"line", e.line}, {"message", e.message}});
    return out;
}

} // namespace

// Runs fn once the workflows directory has been read again (the answer then shows the change).
void ApiRoutes::after_reload(std::function<void()> fn) {
    std::weak_ptr<int> alive = alive_;
    ctx_.registry.reload(false, [alive, fn = std::move(fn)](const registry::ReloadReport&) {
        if (!alive.expired()) fn();
    });
}

// PUT /v1/workflows/{id}: the body is the file's text, checked as `validate` does (422 with every error and
// nothing written), then written atomically; 201 (new) or 200 with the `show` document once loaded.
void ApiRoutes::put_workflow(const std::string& id, Request& request,
                             const std::shared_ptr<Response>& response) {
    if (!scripting::is_valid_workflow_id(id))
        return response->send(400, kJson,
                              error_body("'" + id +
                                         "' is not a valid workflow id (letters, digits, '_', '.', '-', "
                                         "starting with a letter or digit)"));
    const registry::WorkflowEntry* entry = ctx_.registry.find(id);
    const bool existed = entry != nullptr;
    std::string path = existed ? entry->file : ctx_.registry.dir() + "/" + id + ".lua";
    std::vector<scripting::LoadError> errors = ctx_.registry.check_text(id, path, request.body);
    if (!errors.empty())
        return response->send(
            422, kJson,
            json{{"error", errors.front().to_string()}, {"errors", errors_json(errors)}}.dump(
                -1, ' ', false, json::error_handler_t::replace));
    auto error = std::make_shared<std::string>();
    std::weak_ptr<int> alive = alive_;
    auto queued = loop::run_in_pool(
        ctx_.loop, [path, text = std::move(request.body), error] { *error = write_atomically(path, text); },
        [this, alive, id, existed, error, response] {
            if (alive.expired()) return;
            if (!error->empty()) {
                log::error("PUT /v1/workflows/%s: %s", id.c_str(), error->c_str());
                return response->send(500, kJson, error_body(*error));
            }
            log::info("workflow %s %s over the HTTP API", id.c_str(), existed ? "replaced" : "created");
            after_reload([this, id, existed, response] {
                socket_("show", {{"workflow", id}},
                        std::make_shared<HttpReply>(response, existed ? 200 : 201));
            });
        });
    if (!queued) response->send(503, kJson, error_body(queued.error().message));
}

// DELETE /v1/workflows/{id}: removes its file; running executions finish with the version they started
// with. 204 once the directory has been read again.
void ApiRoutes::delete_workflow(const std::string& id, const std::shared_ptr<Response>& response) {
    const registry::WorkflowEntry* entry = ctx_.registry.find(id);
    if (!entry) return response->send(404, kJson, error_body("no workflow '" + id + "'"));
    auto error = std::make_shared<std::string>();
    std::weak_ptr<int> alive = alive_;
    auto queued = loop::run_in_pool(
        ctx_.loop,
        [path = entry->file, error] {
            if (::unlink(path.c_str()) != 0 && errno != ENOENT)
                *error = "cannot remove " + path + ": " + std::strerror(errno);
        },
        [this, alive, id, error, response] {
            if (alive.expired()) return;
            if (!error->empty()) return response->send(500, kJson, error_body(*error));
            log::info("workflow %s deleted over the HTTP API", id.c_str());
            after_reload([response] { response->send(204, kJson, ""); });
        });
    if (!queued) response->send(503, kJson, error_body(queued.error().message));
}

} // namespace luaflow::http
