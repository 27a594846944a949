#pragma once
// The HTTP API's endpoints (SPEC 7) over the control socket's handlers: each endpoint is one of the
// socket's methods with its parameters taken from the path, the query and the body, so the socket and
// HTTP answer with the same documents, from the same code.
#include "daemon/control/handlers.hpp"
#include "daemon/http/module.hpp"

#include <memory>
#include <string>

namespace luaflow::http {

// The longest `?wait=` honoured; a longer one is refused (a client that wants longer polls `GET
// /v1/executions/{id}`).
inline constexpr Millis kMaxWait = 3'600'000;

class ApiRoutes final : public Routes {
  public:
    // `state_dir`: the store's directory (its size is a metric).
    ApiRoutes(control::Context& ctx, std::string state_dir);
    void handle(Request request, std::shared_ptr<Response> response) override;

    // The module's server, for the webhooks' signatures (it holds libcrypto).
    void set_server(const Server* server) { server_ = server; }

  private:
    void run(const std::string& workflow, Request& request, const std::shared_ptr<Response>& response);
    void hook(const std::string& workflow, Request& request, const std::shared_ptr<Response>& response);
    void accept_hook(const std::string& workflow, const nlohmann::json& trigger, const std::string& secret,
                     Request& request, const std::shared_ptr<Response>& response);
    void put_workflow(const std::string& id, Request& request, const std::shared_ptr<Response>& response);
    void delete_workflow(const std::string& id, const std::shared_ptr<Response>& response);
    void after_reload(std::function<void()> fn);
    std::optional<Millis> wait_of(const Request& request, const std::shared_ptr<Response>& response,
                                  bool& bad);
    void start(nlohmann::json params, nlohmann::json trigger, std::optional<Millis> wait,
               std::optional<std::string> respond, int created, const std::shared_ptr<Response>& response);

    control::Context& ctx_;
    control::Handler socket_;
    std::string state_dir_;
    const Server* server_ = nullptr;
    // Pool jobs' answers find it expired once the routes are gone (the daemon's end).
    std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

// The value of `key` in an application/x-www-form-urlencoded query ("a=1&b=x%20y"), decoded; nothing when
// absent.
std::optional<std::string> query_value(const std::string& query, const std::string& key);

} // namespace luaflow::http
