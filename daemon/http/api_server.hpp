#pragma once
// The HTTP API (SPEC 7), when `http.listen` is set: loads luaflow-http.so (daemon/http/module.hpp), reads
// the token file and starts the module's server on the loop with the routes over the control handlers.
#include "common/result.hpp"
#include "daemon/config/config.hpp"
#include "daemon/control/handlers.hpp"
#include "daemon/http/module.hpp"
#include "daemon/http/routes.hpp"

#include <memory>
#include <string>

namespace luaflow::http {

class ApiServer {
  public:
    // Listening, or why not (a config error: the daemon does not start without the API it was asked for).
    static Result<std::unique_ptr<ApiServer>> start(uv_loop_t* loop, const config::Config& config,
                                                    control::Context& ctx);
    ApiServer(const ApiServer&) = delete;
    ApiServer& operator=(const ApiServer&) = delete;

    // A reloaded config (SIGHUP): the token is read again from http.token_file, so that a token can be
    // rotated without a restart; one that cannot be read leaves the old one in force (and says why).
    // The other http keys wait for the next start.
    void reload(const config::Config& config);

    // Stops listening and ends every connection (shutdown).
    void close();
    int port() const { return server_->port(); }

  private:
    ApiServer() = default;
    std::unique_ptr<ApiRoutes> routes_;
    decltype(config::Config::http) started_; // what it started with
    Server* server_ = nullptr;               // the module's; it lives to the process's end (module.hpp)
};

// "127.0.0.1:8470", "[::1]:8470" -> host and port, or an error naming the value.
Result<std::pair<std::string, int>> parse_listen(const std::string& text);

} // namespace luaflow::http
