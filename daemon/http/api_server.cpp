#include "daemon/http/api_server.hpp"

#include "common/log.hpp"
#include "common/read_source_file.hpp"

#include <dlfcn.h>
#include <unistd.h>

namespace luaflow::http {

namespace {

#ifndef LUAFLOW_MODULE_DIR
#define LUAFLOW_MODULE_DIR "/usr/lib/luaflow"
#endif

void log_from_module(int level, const char* message) {
    if (level == 0)
        log::error("%s", message);
    else if (level == 1)
        log::warn("%s", message);
    else
        log::info("%s", message);
}

// Next to the running luaflowd (the build tree), else where it is installed.
Result<void*> load_module() {
    std::vector<std::string> tried;
    char self[4096];
    ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    std::vector<std::string> paths;
    if (n > 0) {
        std::string exe(self, static_cast<std::size_t>(n));
        paths.push_back(exe.substr(0, exe.rfind('/') + 1) + kModuleFile);
    }
    paths.push_back(std::string(LUAFLOW_MODULE_DIR) + "/" + kModuleFile);
    std::string errors;
    for (const std::string& path : paths) {
        if (::access(path.c_str(), F_OK) != 0) continue;
        void* module = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (!module) return make_error(ErrorCode::unavailable, std::string("the HTTP API: ") + ::dlerror());
        void* start = ::dlsym(module, kStartServerSymbol);
        if (!start)
            return make_error(ErrorCode::unavailable,
                              "the HTTP API: " + path + " has no " + kStartServerSymbol);
        return start;
    }
    std::string where;
    for (const std::string& p : paths)
        where += (where.empty() ? "" : " or ") + p;
    return make_error(ErrorCode::unavailable,
                      "the HTTP API needs " + std::string(kModuleFile) + " (not at " + where + ")");
}

// The bearer token: the file's content without trailing white space (its newline).
Result<std::string> read_token(const config::Config& config) {
    if (config.http.token_file.empty())
        return make_error(ErrorCode::invalid,
                          "http.listen is set but http.token_file is not: every endpoint but "
                          "/healthz and /hooks/* needs the token it holds (SPEC 7)");
    auto text = read_source_file(config.http.token_file);
    if (!text) return make_error(ErrorCode::invalid, "http.token_file: " + text.error().message);
    std::string token = std::move(text.value());
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back())))
        token.pop_back();
    if (token.empty())
        return make_error(ErrorCode::invalid, "http.token_file: " + config.http.token_file + " is empty");
    return token;
}

} // namespace

Result<std::pair<std::string, int>> parse_listen(const std::string& text) {
    auto bad = [&] {
        return make_error(ErrorCode::invalid,
                          "http.listen: expected ADDR:PORT such as 127.0.0.1:8470 or [::1]:8470, got '" +
                              text + "'");
    };
    std::string host;
    std::string port;
    if (text.starts_with("[")) {
        std::size_t close = text.find("]:");
        if (close == std::string::npos) return bad();
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else {
        std::size_t colon = text.rfind(':');
        if (colon == std::string::npos || text.find(':') != colon) return bad();
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
    }
    char* end = nullptr;
    long p = std::strtol(port.c_str(), &end, 10);
    if (host.empty() || port.empty() || *end || p < 0 || p > 65535) return bad();
    return std::make_pair(host, static_cast<int>(p));
}

Result<std::unique_ptr<ApiServer>> ApiServer::start(uv_loop_t* loop, const config::Config& config,
                                                    control::Context& ctx) {
    auto address = parse_listen(config.http.listen);
    if (!address) return address.error();
    auto token = read_token(config);
    if (!token) return token.error();
    auto symbol = load_module();
    if (!symbol) return symbol.error();
    auto start_server = reinterpret_cast<StartServer>(*symbol);

    std::unique_ptr<ApiServer> api(new ApiServer());
    api->routes_ = std::make_unique<ApiRoutes>(ctx, config.state);
    api->started_ = config.http;
    Options options;
    options.host = address->first;
    options.port = address->second;
    options.token = std::move(token.value());
    options.max_body = config.http.max_body;
    options.request_timeout_ms = static_cast<std::uint64_t>(config.http.timeout);
    options.max_connections = config.http.max_connections;
    options.log = log_from_module;
    std::string error;
    api->server_ = start_server(loop, options, api->routes_.get(), &error);
    if (!api->server_) return make_error(ErrorCode::unavailable, error);
    api->routes_->set_server(api->server_);
    return api;
}

void ApiServer::reload(const config::Config& config) {
    const auto& now = config.http;
    if (now.listen != started_.listen || now.max_body != started_.max_body ||
        now.timeout != started_.timeout || now.max_connections != started_.max_connections)
        log::warn("http: a new listen, max_body, timeout or max_connections takes effect at the next start");
    auto token = read_token(config);
    if (!token) {
        log::error("%s; the HTTP API keeps its token", token.error().message.c_str());
        return;
    }
    server_->set_token(token.value());
}

void ApiServer::close() {
    if (server_) server_->close();
}

} // namespace luaflow::http
