#pragma once
// The daemon's config file (SPEC 2): a Lua file, run in a sandbox, that sets globals or returns a table.
#include "common/duration.hpp"
#include "common/result.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace luaflow::config {

inline constexpr const char* kDefaultConfigFile = "/etc/luaflow/luaflowd.lua";

struct QueueConfig {
    int concurrency = 0; // 0 = unlimited
};

// A place where subprocess actions run (SPEC 2 `hosts`): this machine, a machine over ssh, or a Slurm
// cluster.
struct HostConfig {
    enum class Kind { local, ssh, slurm };
    Kind kind = Kind::local;
    std::optional<double> cpus;          // unset: this machine's CPU count (local), unlimited (ssh)
    bool gpus_auto = false;              // "auto": the devices `nvidia-smi -L` lists
    std::vector<std::string> gpus;       // device ids handed over in CUDA_VISIBLE_DEVICES
    std::optional<std::uint64_t> memory; // bytes; unset: this machine's memory (local), unlimited (ssh)
    struct {
        std::string target; // "user@host"
        std::optional<int> port;
        std::string identity;             // -i FILE
        std::vector<std::string> options; // each passed as -o OPTION
    } ssh;
    struct {
        std::string partition, account;
        std::vector<std::string> options; // extra sbatch arguments
    } slurm;
};

// Where notifications go (SPEC 2 `notifiers`, SPEC 8): an e-mail over SMTP, or a webhook.
struct NotifierConfig {
    enum class Kind { email, webhook };
    Kind kind = Kind::webhook;
    std::string url;
    // email
    std::string from;
    std::vector<std::string> to;
    std::string user, password_file; // AUTH when user is set; the password is the file's first line
    std::string ca_file;             // certificates to trust for TLS instead of the system's
    // webhook: json, slack, discord or ntfy
    std::string format = "json";
};

// What a commit survives (SPEC 5): kill -9 of the daemon (SQLite's synchronous=NORMAL in WAL mode: the
// commit is in the WAL before COMMIT returns), or power loss as well (synchronous=FULL: the WAL is synced
// at every commit, which costs a disk flush each).
enum class Durability { crash, power };

struct Config {
    std::string file; // where it was read from; empty when defaults only
    std::string workflows = "/etc/luaflow/workflows";
    std::string state = "/var/lib/luaflow";
    struct {
        std::string path = "/run/luaflow/luaflowd.sock";
        std::optional<unsigned> mode; // e.g. 0660
        std::string group;
    } socket;
    struct {
        std::string listen; // empty: off
        std::string token_file;
        std::uint64_t max_body = 1u << 20; // a larger request body gets 413 before it is read
        Millis timeout = 10'000;           // a request's headers and body; an idle keep-alive connection
        int max_connections = 256;         // beyond it a new connection is closed at once
    } http;
    struct {
        int days = 30;
        int keep_per_workflow = 1000;
    } retention;
    Millis shutdown_grace = 30'000;
    Durability durability = Durability::crash;
    std::map<std::string, QueueConfig> queues;
    std::map<std::string, HostConfig> hosts = {{"local", {}}}; // "local" is always there
    std::map<std::string, NotifierConfig> notifiers;
    // False where no config file was read (luaflowctl validate and test, for now): workflows' rules may
    // name notifiers this config does not have.
    bool notifiers_known = true;
    nlohmann::json notify = nlohmann::json::object(); // global rules: { event = { notifier, ... } }
    struct {
        std::uint64_t memory = 64u << 20; // bytes per workflow Lua state
        std::vector<std::string> paths;
        bool exec = true; // false: exec(), cmd and shell are refused (SPEC 3, the security model)
    } sandbox;
    struct {
        std::vector<std::string> pass;
        std::map<std::string, std::string> secrets; // name -> file
    } env;
};

// Reads `path`. A missing file gives the defaults (with `file` empty); any error in it is an Error
// whose message reads "FILE:LINE: message" (unknown keys included: "luaflowd.lua:3: unknown key 'sheduler'").
// Relative paths in it (workflows, state, socket.path, http.token_file, sandbox.paths, env.secrets,
// notifiers' password_file, hosts' identity) are resolved against `base_dir`, the directory luaflowd
// was started in (SPEC 1); empty: the current working directory.
Result<Config> load_config(const std::string& path, const std::string& base_dir = {});

// `path` made absolute against `base_dir` (normalised: no "." or ".." parts); an absolute or empty path
// is returned as it is.
std::string resolve_path(const std::string& path, const std::string& base_dir);

} // namespace luaflow::config
