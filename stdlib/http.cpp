// http.request{ method, url, headers, body, timeout }, http.get(url [, opts]), http.post(url, body [, opts])
// (SPEC 3): an HTTP(S) client on the loop's libcurl multi (loop/curl_multi.hpp). The call yields
// the action's coroutine; the transfer belongs to the task's wait, and the multi's completion callback
// (at the top of a libuv callback) resumes it (STYLE 2.5).
//
// Any HTTP status is a result; a failure to get an answer raises naming the method, the URL and curl's
// cause. The C functions return (true, response) or (false, message), and a small Lua wrapper raises
// the message at the caller's line: a C function resumed after a yield cannot raise by itself.
//
// libcurl is loaded by the first call (loop/curl_api.hpp): a daemon whose workflows make no request
// never maps it. Without it, every call raises naming libcurl.so.4 and the loader's reason.
#include "common/duration.hpp"
#include "loop/curl_api.hpp"
#include "loop/curl_multi.hpp"
#include "scripting/convert.hpp"
#include "stdlib/stdlib.hpp"
#include "version.hpp"

#include <cctype>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace luaflow::stdlib {

namespace {

constexpr Millis kDefaultTimeout = 30'000;
// Larger answers raise rather than being cut short; a quarter of the default sandbox.memory.
constexpr curl_off_t kMaxResponseBody = 16 << 20;
constexpr const char* kMaxResponseText = "16 MiB";
// Redirects followed within http and https, as Python requests and n8n do by default.
constexpr long kMaxRedirects = 10;
constexpr const char* kProtocols = "http,https";

struct UrlFree {
    const loop::CurlApi* curl = nullptr;
    void operator()(CURLU* u) const { curl->url_cleanup(u); }
};

struct Request {
    std::string method = "GET";
    std::string url;
    std::unique_ptr<CURLU, UrlFree> parsed; // handed to curl, which then need not parse it again
    std::vector<std::string> headers;       // "Name: value" lines for CURLOPT_HTTPHEADER
    std::optional<std::string> body;
    Millis timeout = kDefaultTimeout;
};

std::string lower(std::string s) {
    for (char& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// RFC 9110 token characters: methods and header names.
bool is_token(const std::string& s) {
    if (s.empty()) return false;
    for (unsigned char c : s)
        if (!std::isalnum(c) && !std::strchr("!#$%&'*+-.^_`|~", c)) return false;
    return true;
}

bool has_line_break(const std::string& s) {
    return s.find_first_of(std::string("\r\n\0", 3)) != std::string::npos;
}

std::string type_of(lua_State* L, int idx) {
    if (lua_type(L, idx) == LUA_TSTRING) return std::string("string \"") + lua_tostring(L, idx) + "\"";
    return luaL_typename(L, idx);
}

// The transfer of one call. Owned by the task; cancel() takes it out of the multi, and the destructor
// frees the easy handle, so a late completion finds nothing (STYLE 2.5 rules 3 and 4).
class HttpWait final : public scripting::Wait {
  public:
    HttpWait(scripting::Task& task, loop::CurlMulti& multi, std::string fn, Request req)
        : task_(&task), multi_(multi), curl_(multi.api()), fn_(std::move(fn)), req_(std::move(req)) {}
    ~HttpWait() override {
        multi_.release(easy_); // out of the multi first, so a late completion finds nothing
        curl_.slist_free_all(header_list_);
    }
    HttpWait(const HttpWait&) = delete;
    HttpWait& operator=(const HttpWait&) = delete;

    void cancel() override { multi_.remove(easy_); }

    // "http.get: GET http://host/path"
    std::string what() const { return fn_ + ": " + req_.method + " " + req_.url; }

    Result<void> start() {
        easy_ = multi_.acquire();
        if (!easy_)
            return make_error(ErrorCode::internal, what() + ": cannot create a transfer (out of memory)");
        for (const std::string& h : req_.headers) {
            curl_slist* more = curl_.slist_append(header_list_, h.c_str());
            if (!more) return make_error(ErrorCode::internal, what() + ": out of memory");
            header_list_ = more;
        }
        CURL* e = easy_;
        curl_.easy_set<CURLOPT_CURLU>(e, req_.parsed.get());
        curl_.easy_set<CURLOPT_PROTOCOLS_STR>(e, kProtocols);
        curl_.easy_set<CURLOPT_REDIR_PROTOCOLS_STR>(e, kProtocols);
        curl_.easy_set<CURLOPT_FOLLOWLOCATION>(e, 1L);
        curl_.easy_set<CURLOPT_MAXREDIRS>(e, kMaxRedirects);
        // No signals from curl's resolver; the daemon is one loop, and timeouts are curl's timers.
        curl_.easy_set<CURLOPT_NOSIGNAL>(e, 1L);
        curl_.easy_set<CURLOPT_TIMEOUT_MS>(e, static_cast<long>(req_.timeout));
        curl_.easy_set<CURLOPT_ERRORBUFFER>(e, errbuf_);
        curl_.easy_set<CURLOPT_WRITEFUNCTION>(e, &HttpWait::on_body);
        curl_.easy_set<CURLOPT_WRITEDATA>(e, this);
        // Refused early when the server announces the size; on_body catches the others.
        curl_.easy_set<CURLOPT_MAXFILESIZE_LARGE>(e, kMaxResponseBody);
        // Every encoding curl can decode; the body is handed over decoded.
        curl_.easy_set<CURLOPT_ACCEPT_ENCODING>(e, "");
        curl_.easy_set<CURLOPT_USERAGENT>(e, user_agent().c_str());
        curl_.easy_set<CURLOPT_HTTPHEADER>(e, header_list_);
        const std::string& m = req_.method;
        bool sends_empty_body = m == "POST" || m == "PUT" || m == "PATCH";
        if (m == "HEAD") {
            curl_.easy_set<CURLOPT_NOBODY>(e, 1L);
        } else if (m != "GET" || req_.body) {
            // POST keeps curl's own handling, which turns it into GET after a 301, 302 or 303 as
            // browsers and requests do; other methods are kept across redirects.
            if (m != "POST") curl_.easy_set<CURLOPT_CUSTOMREQUEST>(e, m.c_str());
            if (req_.body || sends_empty_body) {
                const std::string& b = req_.body ? *req_.body : empty_;
                curl_.easy_set<CURLOPT_POSTFIELDSIZE_LARGE>(e, static_cast<curl_off_t>(b.size()));
                curl_.easy_set<CURLOPT_POSTFIELDS>(e, b.data());
            }
        }
        CURLMcode rc = multi_.add(e, [this](CURLcode code) { on_done(code); });
        if (rc != CURLM_OK) return make_error(ErrorCode::internal, what() + ": " + curl_.multi_strerror(rc));
        return {};
    }

  private:
    static const std::string& user_agent() {
        static const std::string ua = std::string("luaflow/") + kVersion;
        return ua;
    }

    static size_t on_body(char* data, size_t size, size_t n, void* userp) {
        auto* self = static_cast<HttpWait*>(userp);
        size_t len = size * n;
        if (self->body_.size() + len > static_cast<size_t>(kMaxResponseBody)) {
            self->too_large_ = true;
            return 0; // curl stops with CURLE_WRITE_ERROR
        }
        self->body_.append(data, len);
        return len;
    }

    std::string failure(CURLcode code) const {
        if (too_large_ || code == CURLE_FILESIZE_EXCEEDED)
            return what() + ": the response is larger than the " + kMaxResponseText + " limit";
        if (code == CURLE_OPERATION_TIMEDOUT)
            return what() + " timed out after " + format_duration(req_.timeout);
        std::string cause = curl_.easy_strerror(code);
        if (errbuf_[0]) cause += std::string(": ") + errbuf_;
        return what() + ": " + cause;
    }

    // Called by the multi after the transfer left it, at the top of a libuv callback.
    void on_done(CURLcode code) {
        scripting::Task* task = task_;
        bool ok = code == CURLE_OK;
        std::string error = ok ? std::string() : failure(code);
        // Built now, while the easy handle still holds the headers (wake() frees this wait first), on
        // the main thread under protection: the response may not fit in the workflow's memory. Then
        // the coroutine gets (false, nil), and the wrapper raises a fixed message.
        scripting::LuaRef result;
        auto built = scripting::protected_call(task->state().L(), [&](lua_State* L) {
            if (ok)
                push_response(L);
            else
                lua_pushlstring(L, error.data(), error.size());
            result = scripting::LuaRef::pop(L);
        });
        // From here on only locals: the wait is gone once the coroutine runs.
        task->wake([&](lua_State* co) {
            lua_pushboolean(co, built && ok);
            result.push(co);
            // Anchored on the coroutine now; dropped before Lua runs, since the task (and its state)
            // may be gone when wake() returns.
            result.reset();
            return 2;
        });
    }

    // { status = 200, headers = { ["content-type"] = "..." }, body = "..." }
    void push_response(lua_State* L) {
        long status = 0;
        curl_.easy_info<CURLINFO_RESPONSE_CODE>(easy_, &status);
        lua_createtable(L, 0, 3);
        lua_pushinteger(L, static_cast<lua_Integer>(status));
        lua_setfield(L, -2, "status");
        lua_newtable(L);
        // The last response's headers (after redirects), as curl parsed them; names lowercased, a
        // repeated header's values joined with ", " in the order they came.
        std::string name;
        curl_header* prev = nullptr;
        while (curl_header* h = curl_.easy_nextheader(easy_, CURLH_HEADER, -1, prev)) {
            prev = h;
            name.assign(h->name);
            for (char& c : name)
                c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            lua_getfield(L, -1, name.c_str());
            if (lua_isnil(L, -1)) {
                lua_pop(L, 1);
                lua_pushstring(L, h->value);
            } else {
                lua_pushliteral(L, ", ");
                lua_pushstring(L, h->value);
                lua_concat(L, 3);
            }
            lua_setfield(L, -2, name.c_str());
        }
        lua_setfield(L, -2, "headers");
        lua_pushlstring(L, body_.data(), body_.size());
        lua_setfield(L, -2, "body");
    }

    scripting::Task* task_; // the task owns this wait, so it outlives it
    loop::CurlMulti& multi_;
    const loop::CurlApi& curl_;
    std::string fn_;
    Request req_;
    CURL* easy_ = nullptr;
    curl_slist* header_list_ = nullptr;
    char errbuf_[CURL_ERROR_SIZE] = {};
    std::string body_;
    bool too_large_ = false;
    const std::string empty_;
};

// Argument checks. Each returns an error message, or "" when the value is good.
class Checker {
  public:
    Checker(lua_State* L, std::string fn, const loop::CurlApi& curl)
        : L_(L), fn_(std::move(fn)), curl_(curl) {}

    std::string url(int idx, Request& req) {
        if (lua_type(L_, idx) != LUA_TSTRING)
            return fn_ + ": the url must be a string, got " + type_of(L_, idx);
        req.url = lua_tostring(L_, idx);
        // curl's own parser decides what a URL is.
        req.parsed = std::unique_ptr<CURLU, UrlFree>(curl_.url(), UrlFree{&curl_});
        if (!req.parsed) return fn_ + ": out of memory";
        CURLUcode rc = curl_.url_set(req.parsed.get(), CURLUPART_URL, req.url.c_str(), 0);
        if (rc != CURLUE_OK)
            return fn_ + ": '" + req.url + "' is not a valid URL (" + curl_.url_strerror(rc) + ")";
        char* scheme = nullptr;
        std::string err;
        if (curl_.url_get(req.parsed.get(), CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK && scheme) {
            std::string s = lower(scheme);
            if (s != "http" && s != "https")
                err = fn_ + ": '" + req.url + "': only http:// and https:// URLs are allowed";
        }
        curl_.free(scheme);
        return err;
    }

    std::string method(int idx, Request& req) {
        if (lua_type(L_, idx) != LUA_TSTRING)
            return fn_ + ": field 'method' must be a string like \"GET\", got " + type_of(L_, idx);
        std::string m = lua_tostring(L_, idx);
        if (!is_token(m)) return fn_ + ": field 'method' is not a valid HTTP method: \"" + m + "\"";
        for (char& c : m)
            c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        req.method = std::move(m);
        return "";
    }

    std::string body(int idx, Request& req) {
        if (lua_isnil(L_, idx)) return "";
        if (lua_type(L_, idx) == LUA_TSTRING) {
            size_t len = 0;
            const char* s = lua_tolstring(L_, idx, &len);
            req.body.emplace(s, len);
            if (!has_header(req, "content-type")) add_header(req, "Content-Type:"); // not curl's form type
            return "";
        }
        if (lua_type(L_, idx) == LUA_TTABLE) {
            auto j = scripting::to_json(L_, idx, "body");
            if (!j) return fn_ + ": " + j.error().message;
            try {
                req.body = j->dump();
            } catch (const nlohmann::json::type_error& e) { // a string that is not UTF-8
                return fn_ + ": body: " + e.what();
            }
            if (!has_header(req, "content-type")) add_header(req, "Content-Type: application/json");
            return "";
        }
        return fn_ + ": the body must be a string or a table (sent as JSON), got " + type_of(L_, idx);
    }

    std::string headers(int idx, Request& req) {
        if (lua_isnil(L_, idx)) return "";
        if (!lua_istable(L_, idx))
            return fn_ + ": field 'headers' must be a table of name = value, got " + type_of(L_, idx);
        lua_pushnil(L_);
        while (lua_next(L_, idx) != 0) {
            if (lua_type(L_, -2) != LUA_TSTRING) {
                std::string got = luaL_typename(L_, -2);
                lua_pop(L_, 2);
                return fn_ + ": header names must be strings, got " + got;
            }
            std::string name = lua_tostring(L_, -2);
            int t = lua_type(L_, -1);
            if (t != LUA_TSTRING && t != LUA_TNUMBER) {
                std::string got = luaL_typename(L_, -1);
                lua_pop(L_, 2);
                return fn_ + ": headers['" + name + "'] must be a string or a number, got " + got;
            }
            size_t len = 0;
            const char* v = lua_tolstring(L_, -1, &len); // converts the stack copy only
            std::string value(v, len);
            lua_pop(L_, 1);
            if (!is_token(name)) {
                lua_pop(L_, 1);
                return fn_ + ": header name '" + name + "' is not a valid token";
            }
            if (has_line_break(value)) {
                lua_pop(L_, 1);
                return fn_ + ": headers['" + name + "'] contains a line break";
            }
            // curl sends "Name;" as a header with an empty value ("Name:" would remove it).
            req.headers.push_back(value.empty() ? name + ";" : name + ": " + value);
        }
        return "";
    }

    std::string timeout(int idx, Request& req) {
        if (lua_isnil(L_, idx)) return "";
        std::optional<Millis> ms;
        if (lua_type(L_, idx) == LUA_TNUMBER)
            ms = duration_from_seconds(lua_tonumber(L_, idx));
        else if (lua_type(L_, idx) == LUA_TSTRING)
            ms = parse_duration(lua_tostring(L_, idx));
        if (!ms || *ms <= 0)
            return fn_ + ": field 'timeout' must be seconds > 0 or a duration like \"30s\", got " +
                   type_of(L_, idx);
        req.timeout = *ms;
        return "";
    }

    // The fields of the table at `idx` among `allowed` (request: all of them; get/post: their opts).
    std::string fields(int idx, Request& req, std::initializer_list<const char*> allowed) {
        if (idx < 0) idx = lua_gettop(L_) + idx + 1;
        lua_pushnil(L_);
        while (lua_next(L_, idx) != 0) {
            lua_pop(L_, 1);
            std::string key = lua_type(L_, -1) == LUA_TSTRING ? lua_tostring(L_, -1) : "";
            bool known = false;
            std::string list;
            for (const char* a : allowed) {
                known = known || key == a;
                list += list.empty() ? a : std::string(", ") + a;
            }
            if (!known) {
                std::string shown =
                    key.empty() ? std::string("a ") + luaL_typename(L_, -1) + " key" : "'" + key + "'";
                lua_pop(L_, 1);
                return fn_ + ": unknown field " + shown + " (expected " + list + ")";
            }
        }
        // Headers before the body: the body's default Content-Type yields to a given one.
        for (const char* name : {"method", "url", "headers", "body", "timeout"}) {
            bool wanted = false;
            for (const char* a : allowed)
                wanted = wanted || std::string(a) == name;
            if (!wanted) continue;
            lua_getfield(L_, idx, name);
            std::string err;
            std::string n = name;
            if (n == "method")
                err = lua_isnil(L_, -1) ? "" : method(lua_gettop(L_), req);
            else if (n == "url")
                err = url(lua_gettop(L_), req);
            else if (n == "headers")
                err = headers(lua_gettop(L_), req);
            else if (n == "body")
                err = body(lua_gettop(L_), req);
            else
                err = timeout(lua_gettop(L_), req);
            lua_pop(L_, 1);
            if (!err.empty()) return err;
        }
        return "";
    }

    // Headers the caller gave, whatever their case.
    static bool has_header(const Request& req, const std::string& lower_name) {
        for (const std::string& h : req.headers) {
            std::string name = lower(h.substr(0, h.find_first_of(":;")));
            if (name == lower_name) return true;
        }
        return false;
    }
    static void add_header(Request& req, std::string line) { req.headers.push_back(std::move(line)); }

  private:
    lua_State* L_;
    std::string fn_;
    const loop::CurlApi& curl_;
};

int fail(lua_State* L, const std::string& message) {
    lua_pushboolean(L, 0);
    lua_pushlstring(L, message.data(), message.size());
    return 2;
}

// Checks the context, then sends `req` and yields until the answer.
int send(lua_State* L, const std::string& fn, Request req) {
    scripting::Task* task = scripting::Task::current(L);
    Services* services = services_of(L);
    loop::CurlMulti* multi = services ? services->curl() : nullptr;
    if (!multi) return fail(L, fn + ": no HTTP client here (only while luaflowd runs workflows)");
    // Sent as is otherwise: python's http.server and others answer "Expect: 100-continue" late or never.
    if (!Checker::has_header(req, "expect")) Checker::add_header(req, "Expect:");
    auto wait = std::make_unique<HttpWait>(*task, *multi, fn, std::move(req));
    if (auto started = wait->start(); !started) return fail(L, started.error().message);
    task->await(std::move(wait));
    return lua_yield(L, 0);
}

// Outside an action (load time, a coroutine the action made) a waiting call is refused (STYLE 2.5 rule 1).
bool in_action(lua_State* L) {
    return scripting::Task::current(L) != nullptr;
}

std::string not_in_action(const std::string& fn) {
    return fn + ": only allowed while an action runs (not at load time or inside a coroutine the action "
                "created)";
}

int l_http_request(lua_State* L) {
    const std::string fn = "http.request";
    if (!in_action(L)) return fail(L, not_in_action(fn));
    auto curl = loop::curl_api(); // the first call anywhere loads libcurl
    if (!curl) return fail(L, fn + ": " + curl.error().message);
    if (lua_gettop(L) != 1 || !lua_istable(L, 1))
        return fail(L, fn + ": expected a table { method, url, headers, body, timeout }, got " +
                           (lua_gettop(L) ? type_of(L, 1) : std::string("nothing")));
    Request req;
    Checker check(L, fn, **curl);
    lua_getfield(L, 1, "url");
    bool has_url = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (!has_url) return fail(L, fn + ": field 'url' is required");
    if (auto err = check.fields(1, req, {"method", "url", "headers", "body", "timeout"}); !err.empty())
        return fail(L, err);
    return send(L, fn, std::move(req));
}

// http.get(url [, opts]) and http.post(url, body [, opts]).
int get_or_post(lua_State* L, bool post) {
    const std::string fn = post ? "http.post" : "http.get";
    if (!in_action(L)) return fail(L, not_in_action(fn));
    auto curl = loop::curl_api(); // the first call anywhere loads libcurl
    if (!curl) return fail(L, fn + ": " + curl.error().message);
    int n = lua_gettop(L);
    int opts = post ? 3 : 2;
    if (n < 1 || n > opts)
        return fail(
            L, fn + (post ? ": expected (url, body [, opts]), got " : ": expected (url [, opts]), got ") +
                   std::to_string(n) + " arguments");
    Request req;
    req.method = post ? "POST" : "GET";
    Checker check(L, fn, **curl);
    if (auto err = check.url(1, req); !err.empty()) return fail(L, err);
    if (n >= opts && !lua_isnil(L, opts)) {
        if (!lua_istable(L, opts))
            return fail(L, fn + ": opts must be a table { headers, timeout }, got " + type_of(L, opts));
        if (auto err = check.fields(opts, req, {"headers", "timeout"}); !err.empty()) return fail(L, err);
    }
    if (post)
        if (auto err = check.body(2, req); !err.empty()) return fail(L, err);
    return send(L, fn, std::move(req));
}

int l_http_get(lua_State* L) {
    return get_or_post(L, false);
}

int l_http_post(lua_State* L) {
    return get_or_post(L, true);
}

// Raises a failure at the caller's line (level 2), where a C function resumed after a yield could not.
constexpr const char* kWrapper = R"lua(
local request, get, post, error = ...
local function raising(fn)
    return function(...)
        local ok, r = fn(...)
        if not ok then
            error(r or "http: the response does not fit in the workflow's memory (sandbox.memory)", 2)
        end
        return r
    end
end
return { request = raising(request), get = raising(get), post = raising(post) }
)lua";

} // namespace

void install_http(lua_State* L, int env) {
    if (env < 0 && env > LUA_REGISTRYINDEX) env = lua_gettop(L) + env + 1;
    scripting::load_builtin_chunk(L, kWrapper, "=[http]");
    lua_pushcfunction(L, l_http_request);
    lua_pushcfunction(L, l_http_get);
    lua_pushcfunction(L, l_http_post);
    lua_getfield(L, env, "error");
    lua_call(L, 4, 1);
    lua_setfield(L, env, "http");
}

} // namespace luaflow::stdlib
