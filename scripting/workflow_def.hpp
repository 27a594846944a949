#pragma once
// A workflow as loaded from its file: validated fields and the Lua functions it holds.
// The definition is immutable once loaded; a reload builds a new one, and executions keep the
// shared_ptr of the definition they started with.
#include "common/duration.hpp"
#include "scripting/lua_ref.hpp"
#include "scripting/lua_state.hpp"

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace luaflow::scripting {

enum class ActionKind { run, script, cmd, shell };
enum class Backoff { exponential, fixed };
enum class Overlap { queue, skip };
enum class InputType { string, number, boolean, table };

const char* to_string(ActionKind kind);
const char* to_string(Backoff backoff);
const char* to_string(Overlap overlap);
const char* to_string(InputType type);

inline constexpr Millis kDefaultLuaTimeout = 60'000; // SPEC 3: Lua actions stop at 60 s by default
inline constexpr Millis kDefaultRetryDelay = 1'000;
inline constexpr Millis kMaxBackoff = 3'600'000; // exponential backoff is capped at 1 h

struct InputDecl {
    std::string name;
    InputType type = InputType::string;
    bool required = false;
    std::optional<nlohmann::json> default_value;
};

struct Resources {
    double cpus = 0;
    int gpus = 0;
    std::uint64_t memory = 0; // bytes
};

struct ActionDef {
    std::string name;
    int line = 0; // where the action is defined, for messages
    ActionKind kind = ActionKind::run;
    LuaRef fn;                      // run: the function; script: the compiled chunk (gets ctx as ...)
    std::string script;             // script: path relative to the workflows directory
    std::vector<std::string> cmd;   // cmd: argv, each may hold {{ expr }}
    LuaRef argv_fn;                 // cmd with {{ expr }}: function(ctx) returning the expanded argv
    std::string shell;              // shell: the /bin/sh -c string
    std::vector<std::string> needs; // as written
    std::optional<long> group;
    LuaRef when;
    bool always = false;
    std::optional<Millis> timeout; // per attempt; unset: kDefaultLuaTimeout for run/script, none otherwise
    int retries = 0;
    Millis retry_delay = kDefaultRetryDelay;
    Backoff backoff = Backoff::exponential;
    std::string queue = "default";
    std::string host = "local";
    Resources resources;
    std::map<std::string, std::string> env;
    std::string cwd;
    nlohmann::json config = nlohmann::json::object();
    std::vector<std::size_t> deps;       // indices into WorkflowDef::actions: needs and the previous group
    std::vector<std::size_t> dependents; // the actions whose deps hold this one, ascending
};

struct Triggers {
    bool manual = true;
    nlohmann::json webhook; // null when absent; kept as written for the webhook issue
    nlohmann::json watch;
    nlohmann::json after;
};

struct WorkflowDef {
    // Declared first so that it is destroyed last: every LuaRef below lives in this state.
    std::shared_ptr<LuaState> lua;

    std::string id;
    std::string file;        // path as shown in messages
    std::string source_hash; // definition_digest of the file's text, scripts and lib/; names it in the store
    int line = 0;            // line of the workflow { ... } call
    std::string description;
    bool enabled = true;
    nlohmann::json schedule; // null when absent; as written (daemon/schedule/ parses and expands it)
    int schedule_line = 0;
    Triggers triggers;
    std::vector<InputDecl> inputs;
    nlohmann::json context = nlohmann::json::object();
    int concurrency = 1;
    Overlap overlap = Overlap::queue;
    std::optional<Millis> timeout;
    std::string queue = "default";
    nlohmann::json notify = nlohmann::json::object();
    std::vector<ActionDef> actions; // in file order of their names (sorted by name)
    // The `script` files it runs (path relative to the workflows directory -> text) and the lib/ modules
    // its state requires from (null: from disk), as loaded: what a running execution keeps (SPEC 5).
    SourceFiles scripts;
    std::shared_ptr<const SourceFiles> lib;

    const ActionDef* find_action(const std::string& name) const;
    std::optional<std::size_t> action_index(const std::string& name) const;
};

} // namespace luaflow::scripting
