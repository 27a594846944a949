#include "daemon/config/config.hpp"
#include "tests/unit/support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

using namespace luaflow;
using namespace luaflow::config;

namespace {

Result<Config> load_text(testing::TempDir& dir, const std::string& text) {
    std::string path = dir.file("luaflowd.lua");
    std::ofstream(path) << text;
    return load_config(path);
}

} // namespace

TEST_CASE("a missing config file gives the defaults") {
    auto c = load_config("/nonexistent/luaflowd.lua");
    REQUIRE(c);
    CHECK(c->file.empty());
    CHECK(c->workflows == "/etc/luaflow/workflows");
    CHECK(c->shutdown_grace == 30'000);
    CHECK(c->sandbox.memory == 64u << 20);
}

TEST_CASE("the SPEC's example config loads, as globals") {
    testing::TempDir dir;
    auto c = load_text(dir, R"(workflows = "/srv/wf"
state     = "/srv/state"
socket    = { path = "/run/x.sock", mode = "0660", group = "luaflow" }
http      = { listen = "127.0.0.1:8470", token_file = "/etc/luaflow/api-token" }
retention = { days = 30, keep_per_workflow = 1000 }
shutdown_grace = "10s"
queues = {
  default = { concurrency = 4 },
  gpu     = { concurrency = 2 },
}
hosts = {
  ["local"] = { cpus = 8, gpus = "auto" },
  gpubox    = { ssh = "runner@gpubox", cpus = 32, gpus = { "0", "1", "2", "3" } },
  cluster   = { slurm = { partition = "gpu", account = "ml" } },
}
notifiers = {
  ops  = { email = { url = "smtp://mail.example.com:587", from = "luaflow@edge-7",
                     to = { "ops@example.com" }, user = "luaflow", password_file = "/etc/luaflow/smtp-pass" } },
  chat = { webhook = { url = "https://chat.example.com/hooks/abc", format = "slack" } },
}
notify  = { failure = { "ops" }, timeout = { "ops" } }
sandbox = { memory = "64M", paths = { "/srv/data" } }
env     = { pass = { "PATH", "HOME" }, secrets = { API_KEY = "/etc/luaflow/secrets/api_key" } }
)");
    REQUIRE_MESSAGE(c, c.error().message);
    CHECK(c->workflows == "/srv/wf");
    CHECK(c->socket.mode == 0660u);
    CHECK(c->shutdown_grace == 10'000);
    CHECK(c->queues["gpu"].concurrency == 2);
    CHECK(c->hosts["gpubox"].cpus == 32);
    CHECK(c->hosts["gpubox"].kind == config::HostConfig::Kind::ssh);
    CHECK(c->hosts["gpubox"].ssh.target == "runner@gpubox");
    CHECK(c->hosts["gpubox"].gpus == std::vector<std::string>{"0", "1", "2", "3"});
    CHECK(c->hosts["local"].gpus_auto);
    CHECK(c->hosts["cluster"].kind == config::HostConfig::Kind::slurm);
    CHECK(c->hosts["cluster"].slurm.partition == "gpu");
    CHECK(c->hosts["cluster"].slurm.account == "ml");
    CHECK(c->sandbox.paths == std::vector<std::string>{"/srv/data"});
    CHECK(c->env.secrets["API_KEY"] == "/etc/luaflow/secrets/api_key");
}

TEST_CASE("a returned table works too") {
    testing::TempDir dir;
    auto c = load_text(dir, "return {\n  state = '/x',\n  queues = { q = { concurrency = 1 } },\n}\n");
    REQUIRE(c);
    CHECK(c->state == "/x");
}

TEST_CASE("errors name FILE:LINE and the key") {
    testing::TempDir dir;
    std::string f = dir.file("luaflowd.lua");
    CHECK(load_text(dir, "state = '/x'\nworkflows = '/y'\nsheduler = 1\n").error().message ==
          f + ":3: unknown key 'sheduler'");
    CHECK(load_text(dir, "socket = { path = '/x', bogus = 1 }\n").error().message ==
          f + ":1: unknown key 'socket.bogus'");
    CHECK(load_text(dir, "\nshutdown_grace = 'soon'\n").error().message ==
          f + ":2: shutdown_grace: \"soon\" is not a duration (use 500ms, 30s, 5m, 2h or seconds)");
    CHECK(load_text(dir, "queues = {\n  gpu = { concurrency = 0 },\n}\n")
              .error()
              .message.find("queues.gpu.concurrency: expected an integer >= 1") != std::string::npos);
    CHECK(load_text(dir, "sandbox = { memory = 'lots' }\n").error().message.find("sandbox.memory") !=
          std::string::npos);
    CHECK(load_text(dir, "notifiers = { x = { webhook = { url = 'https://h/x', format = 'xml' } } }\n")
              .error()
              .message.find("expected json, slack, discord or ntfy") != std::string::npos);
    CHECK(load_text(dir, "state = \n").error().message.find(f + ":") == 0);
    CHECK(load_text(dir, "notify = { failure = { 'nobody' } }\nnotifiers = {}\n")
              .error()
              .message.find("unknown notifier 'nobody'") != std::string::npos);
    CHECK(load_text(dir, "durability = 'disk'\n").error().message ==
          f + ":1: durability: expected \"crash\" (commits survive kill -9) or \"power\" (they survive power "
              "loss "
              "too), got \"disk\"");
    CHECK(load_text(dir, "durability = 'power'\n")->durability == config::Durability::power);
    CHECK(load_text(dir, "")->durability == config::Durability::crash);
    // Checked without any notifiers too (issue 18: a rule naming none that exists is an error).
    CHECK(load_text(dir, "notify = { failure = { 'ops' } }\n").error().message ==
          f + ":1: notify.failure: unknown notifier 'ops'");
    CHECK(load_text(dir, "notifiers = { x = { webhook = { url = 'ftp://h/x' } } }\n")
              .error()
              .message.find("notifiers.x.webhook: needs url") != std::string::npos);
    CHECK(load_text(dir, "notifiers = { x = { email = { url = 'http://h', from = 'a', to = { 'b' } } } }\n")
              .error()
              .message.find("smtps://") != std::string::npos);
    CHECK(load_text(dir, "notifiers = { x = { email = { url = 'smtp://h', from = 'a', to = {} } } }\n")
              .error()
              .message.find("needs to =") != std::string::npos);
}

TEST_CASE("sandbox.paths are free of '..', need not exist yet, and relative ones are resolved") {
    testing::TempDir dir;
    std::string f = dir.file("luaflowd.lua");
    CHECK(load_text(dir, "sandbox = { paths = { '/srv/../etc' } }\n").error().message ==
          f + ":1: sandbox.paths: '/srv/../etc' may not contain '..'");
    CHECK(load_text(dir, "sandbox = { paths = { '' } }\n").error().message ==
          f + ":1: sandbox.paths: '' is not a directory");
    auto c = load_text(dir, "sandbox = { paths = { '/nonexistent/luaflow-mount/', '/srv/..data' } }\n");
    REQUIRE(c);
    CHECK(c->sandbox.paths == std::vector<std::string>{"/nonexistent/luaflow-mount/", "/srv/..data"});
}

TEST_CASE("issue 13: relative paths in the config are resolved against the start directory") {
    testing::TempDir dir;
    std::string path = dir.file("luaflowd.lua");
    std::ofstream(path) << "workflows = 'wf'\nstate = './state/'\nsocket = { path = 'run/s.sock' }\n"
                           "http = { token_file = '../token' }\n"
                           "sandbox = { paths = { 'data', '/abs' } }\n"
                           "env = { secrets = { K = 'secrets/k' } }\n"
                           "hosts = { box = { ssh = 'u@h', identity = 'keys/id' } }\n"
                           "notifiers = { ops = { email = { url = 'smtp://h', from = 'a', to = { 'b' },\n"
                           "                                user = 'u', password_file = 'pw' } } }\n";
    auto c = load_config(path, "/srv/project");
    REQUIRE_MESSAGE(c, c.error().message);
    CHECK(c->workflows == "/srv/project/wf");
    CHECK(c->state == "/srv/project/state/");
    CHECK(c->socket.path == "/srv/project/run/s.sock");
    CHECK(c->http.token_file == "/srv/token");
    CHECK(c->sandbox.paths == std::vector<std::string>{"/srv/project/data", "/abs"});
    CHECK(c->env.secrets["K"] == "/srv/project/secrets/k");
    CHECK(c->hosts["box"].ssh.identity == "/srv/project/keys/id");
    CHECK(c->notifiers["ops"].password_file == "/srv/project/pw");
    // Without a base: the working directory.
    auto here = load_config(path);
    REQUIRE(here);
    CHECK(here->workflows == (std::filesystem::current_path() / "wf").string());
    CHECK(resolve_path("/a/b", "/x") == "/a/b");
    CHECK(resolve_path("", "/x") == "");
    CHECK(resolve_path("a/./b/../c", "/x") == "/x/a/c");
}

TEST_CASE("issue 13: a top-level value spanning several lines is reported at its first line") {
    testing::TempDir dir;
    std::string f = dir.file("luaflowd.lua");
    CHECK(load_text(dir, "\nsheduler = {\n  a = 1,\n}\n").error().message ==
          f + ":2: unknown key 'sheduler'");
    CHECK(load_text(dir, "state = '/x'\nqueues = {\n  gpu = 1,\n  cpu = 2,\n}\n").error().message ==
          f + ":2: queues.cpu: expected a table");
    CHECK(load_text(dir, "shutdown_grace =\n  'soon'\n").error().message.find(f + ":1: shutdown_grace") == 0);
}

TEST_CASE("hosts: local is always there; ssh and slurm hosts take their own fields, and errors name them") {
    testing::TempDir dir;
    std::string f = dir.file("luaflowd.lua");
    auto defaults = load_text(dir, "state = '/x'\n");
    REQUIRE(defaults);
    REQUIRE(defaults->hosts.count("local"));
    CHECK(defaults->hosts["local"].kind == config::HostConfig::Kind::local);
    CHECK_FALSE(defaults->hosts["local"].cpus);
    auto c = load_text(
        dir, "hosts = {\n"
             "  box = { ssh = 'root@127.0.0.1', port = 2222, identity = '/k', ssh_options = { 'A=b' },\n"
             "          memory = '2G' },\n"
             "  hpc = { slurm = { partition = 'p', options = { '--qos=low' } } },\n"
             "}\n");
    REQUIRE_MESSAGE(c, c.error().message);
    CHECK(c->hosts.count("local"));
    CHECK(c->hosts["box"].ssh.port == 2222);
    CHECK(c->hosts["box"].ssh.identity == "/k");
    CHECK(c->hosts["box"].ssh.options == std::vector<std::string>{"A=b"});
    CHECK(c->hosts["box"].memory == (2ull << 30));
    CHECK(c->hosts["hpc"].slurm.options == std::vector<std::string>{"--qos=low"});
    CHECK(load_text(dir, "hosts = {\n  a = { port = 22 },\n}\n").error().message ==
          f + ":2: hosts.a.port: only for an ssh host (set ssh = \"user@host\")");
    CHECK(load_text(dir, "hosts = { a = { ssh = 'u@h', port = 70000 } }\n").error().message ==
          f + ":1: hosts.a.port: expected a port number, got 70000");
    CHECK(load_text(dir, "hosts = { a = { ssh = '-oProxyCommand=x' } }\n").error().message ==
          f + ":1: hosts.a.ssh: expected \"user@host\", got \"-oProxyCommand=x\"");
    CHECK(load_text(dir, "hosts = { a = { ssh = 'u@h', slurm = {} } }\n").error().message ==
          f + ":1: hosts.a: a host is either ssh or slurm, not both");
    CHECK(load_text(dir, "hosts = { a = { ssh = 'u@h', gpus = 'auto' } }\n")
              .error()
              .message.find("hosts.a.gpus: \"auto\" is for this machine only") != std::string::npos);
    CHECK(load_text(dir, "hosts = { ['local'] = { ssh = 'u@h' } }\n")
              .error()
              .message.find("the host named local is this machine") != std::string::npos);
    CHECK(load_text(dir, "hosts = { a = { slurm = { partition = 1 } } }\n")
              .error()
              .message.find("hosts.a.slurm.partition: expected a string") != std::string::npos);
}

// Issue 7, item 1 (its audit): a config file that fills its state is an error, never a panic; a reload
// (SIGHUP) runs this inside the running daemon.
TEST_CASE("a config file that fills its memory is an error, not a crash") {
    testing::TempDir dir;
    for (const char* text : {
             // Left at the cap, and then read back: deep nesting needs stack the state no longer has.
             "pcall(function() while true do hog = { hog } end end)\n",
             "local t = {} for i = 1, 1e9 do t[i] = string.rep('c', 64) .. i end\n",
             "error(42)\n",
         }) {
        auto c = load_text(dir, text);
        REQUIRE_FALSE(c);
        CHECK(c.error().message.find("luaflowd.lua") != std::string::npos);
    }
}

TEST_CASE("http: the body limit, the request timeout and the connection cap, with their defaults") {
    testing::TempDir dir;
    auto d = load_text(dir, "http = { listen = '127.0.0.1:0', token_file = 't' }\n");
    REQUIRE(d);
    CHECK(d->http.max_body == 1u << 20);
    CHECK(d->http.timeout == 10'000);
    CHECK(d->http.max_connections == 256);
    auto c =
        load_text(dir, "http = { listen = '127.0.0.1:0', token_file = 't', max_body = '64K', timeout = '2s', "
                       "max_connections = 32 }\n");
    REQUIRE(c);
    CHECK(c->http.max_body == 64u << 10);
    CHECK(c->http.timeout == 2'000);
    CHECK(c->http.max_connections == 32);
    CHECK(load_text(dir, "http = { max_body = 4096 }\n")->http.max_body == 4096);
    std::string f = dir.file("luaflowd.lua");
    CHECK(load_text(dir, "http = { max_body = '12' }\n").error().message ==
          f + ":1: http.max_body: \"12\" is not a size of at least 1K (like \"1M\")");
    CHECK(load_text(dir, "http = { timeout = '10ms' }\n").error().message ==
          f + ":1: http.timeout: \"10ms\" is not a duration of at least 100ms (like \"10s\")");
    CHECK(load_text(dir, "http = { max_connections = 0 }\n").error().message.find("http.max_connections") !=
          std::string::npos);
    CHECK(load_text(dir, "http = { max_body = -5 }\n").error().message.find("http.max_body") !=
          std::string::npos);
}
