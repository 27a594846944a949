#pragma once
// A workflow as loaded from its file: validated fields (WorkflowDef) and, apart, the Lua state with the
// functions it holds (WorkflowCode). The definition is immutable once loaded; a reload builds a new one,
// and executions keep the shared_ptr of the definition they started with. The code can be dropped and
// built again from the definition's own text (registry/code_cache): an idle workflow keeps no state.
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
    std::string script;             // script: path relative to the workflows directory
    std::vector<std::string> cmd;   // cmd: argv, each may hold {{ expr }}
    bool expands_argv = false;      // cmd with {{ expr }}: ActionCode::argv_fn expands it
    std::string shell;              // shell: the /bin/sh -c string
    std::vector<std::string> needs; // as written
    std::optional<long> group;
    bool has_when = false; // ActionCode::when decides whether it runs
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
    nlohmann::json webhook; // {secret | secret_file, respond}; null when absent
    nlohmann::json watch;
    // {workflow, on}: "on" is always there ("success", "failure" or "any"); null when absent.
    nlohmann::json after;
    int line = 0; // of `triggers`, for the errors found after the load (a loop of `after` triggers)
};

// An action's Lua functions, in its workflow's state.
struct ActionCode {
    LuaRef fn;      // run: the function; script: the compiled chunk (gets ctx as ...)
    LuaRef argv_fn; // cmd with {{ expr }}: function(ctx) returning the expanded argv
    LuaRef when;
};

// A workflow's Lua state and the functions its file defined, as one evaluation of the file made them.
struct WorkflowCode {
    // Declared first so that it is destroyed last: every LuaRef below lives in this state.
    std::shared_ptr<LuaState> lua;
    std::vector<ActionCode> actions; // by index into WorkflowDef::actions
};

struct WorkflowDef {
    // The state the load evaluated the file in, with its functions. The registry drops it from the
    // definitions it keeps (an idle workflow holds no Lua state) and builds it again from `source` on
    // demand (scripting::load_code); a definition loaded for one use (check, recovery) keeps it.
    std::shared_ptr<const WorkflowCode> code;

    std::string id;
    std::string file;        // path as shown in messages
    std::string source_hash; // definition_digest of the file's text, scripts and lib/; names it in the store
    std::string source;      // the file's text, as loaded
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

    // Whether an execution runs Lua in the workflow's state: a run or script action, a `when`, a cmd's
    // {{ expr }}. A workflow of plain cmd and shell actions needs no state at all.
    bool uses_lua = false;

    const ActionDef* find_action(const std::string& name) const;
    std::optional<std::size_t> action_index(const std::string& name) const;
};

} // namespace luaflow::scripting
