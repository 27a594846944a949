#pragma once
// One sandboxed lua_State (STYLE 2.9): an allowlisted global table, text-only loading, a memory cap,
// the JIT off, and a count hook that preempts long-running coroutines and stops runaway code.
#include "common/result.hpp"
#include "scripting/lua_ref.hpp"
#include "scripting/source_files.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <lua.hpp>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace luaflow::scripting {

// What the count hook checks, read through the allocator's user data so the hook stays cheap.
struct RunGuard {
    // The coroutine the engine is resuming right now; nullptr outside a resume (load time, config).
    lua_State* task_thread = nullptr;
    // uv_hrtime() nanoseconds. After slice_end_ns the hook yields task_thread (when yieldable) and sets
    // `preempted`; 0 disables preemption.
    std::uint64_t slice_end_ns = 0;
    // After deadline_ns the hook sets `deadline_hit` and yields task_thread when yieldable; otherwise
    // (nested coroutine, C boundary, load time) it raises `deadline_message` as an error. 0 = none.
    std::uint64_t deadline_ns = 0;
    std::string deadline_message = "timed out";
    // uv_hrtime() when the running code last had a point to pause at (its resume, or the start of a
    // load); code that cannot pause (inside a C call) is stopped kMaxUnpausedNs after it. 0 = no limit.
    std::uint64_t unpaused_since_ns = 0;
    bool preempted = false;
    bool deadline_hit = false;
    // Set once the run is being stopped (its deadline, or kMaxUnpausedNs without a pause point): from
    // then on the hook raises `stop_message` at every instruction, in every coroutine, until the run
    // ends, so no pcall can keep it going; the engine reports it (timed_out for a deadline, else failed).
    bool stopping = false;
    std::string stop_message;
    // Coroutines the action resumed (the sandbox's coroutine.resume/wrap), innermost last, and how many
    // of their resumers could not yield (they resumed from inside a C call): only when none is may a
    // preemption yield travel up the chain to task_thread.
    std::vector<lua_State*> resume_chain;
    int unyieldable_resumers = 0;
    // The nested coroutine the hook (or an inner pause) yielded for a preemption; its resumer passes the
    // yield up and resumes it when the action is rescheduled.
    lua_State* nested_preempted = nullptr;
    // The scripting::Task being resumed (owned by the engine; the hook never touches it).
    void* current_task = nullptr;
};

struct SandboxOptions {
    std::size_t memory_limit = 64u << 20; // bytes; 0 = unlimited
    std::string workflows_dir;            // require("lib.x") reads <workflows_dir>/lib/x.lua
    // When set, require reads modules from here ("lib/x.lua" -> text), never from disk: the lib/ the
    // definition was loaded with (SPEC 5).
    std::shared_ptr<const SourceFiles> lib;
    // When set, `script` files are read from here instead of from disk: a stored definition's own.
    std::shared_ptr<const SourceFiles> scripts;
    // False: programs cannot be run (`exec` raises; actions with `cmd` or `shell` fail to load), for
    // workflows from less trusted authors (sandbox.exec = false, SPEC 3).
    bool allow_exec = true;
    // The notifiers the config defines: a workflow's `notify` rule naming another is a load error. Null:
    // not checked.
    std::shared_ptr<const std::set<std::string>> notifiers;
    // Adds the standard library's globals to the sandbox table at index `env` (stdlib::install).
    std::function<void(lua_State* L, int env)> install_globals;
    // The state allocates from an arena of its own (LuaJIT's allocator): faster for one that runs
    // actions, but a fresh 128 KiB mapping each; a state that only evaluates a file uses malloc's heap.
    bool own_arena = false;
};

class LuaState {
  public:
    // Creates the state and its sandbox. Fails only when memory is exhausted.
    static Result<std::unique_ptr<LuaState>> create(const SandboxOptions& options);
    ~LuaState();
    LuaState(const LuaState&) = delete;
    LuaState& operator=(const LuaState&) = delete;

    // The main thread of the state.
    lua_State* L() const { return L_; }
    // The LuaState owning L (any thread of it).
    static LuaState* from(lua_State* L);

    RunGuard& guard() { return guard_; }
    std::size_t memory_used() const { return used_; }
    std::size_t memory_limit() const { return limit_; }
    void set_memory_limit(std::size_t bytes) { limit_ = bytes; }
    // True once an allocation was refused since the last clear; the executor turns it into event `resource`.
    bool memory_exceeded() const { return exceeded_; }
    void clear_memory_exceeded() { exceeded_ = false; }
    const std::string& workflows_dir() const { return workflows_dir_; }
    bool exec_allowed() const { return allow_exec_; }
    const std::set<std::string>* notifiers() const { return notifiers_.get(); }
    // The lib/ modules require reads, or null to read them from disk.
    const SourceFiles* lib() const { return lib_.get(); }

    // How far past the cap the daemon's own protected calls may go (see protected_call).
    static constexpr std::size_t kDaemonReserve = 256u << 10;

    // Compiles text (never bytecode) whose globals are the sandbox; pushes the function onto L, or
    // returns the compiler's "chunkname:line: message".
    Result<void> load(std::string_view code, const std::string& chunkname);
    // Pushes the sandbox global table.
    void push_env(lua_State* L) const { env_.push(L); }

  private:
    friend Result<void> protected_call_within(lua_State* L, std::size_t reserve,
                                              const std::function<void(lua_State*)>& fn);
    LuaState() = default;
    static void* alloc(void* ud, void* ptr, std::size_t osize, std::size_t nsize);

    lua_State* L_ = nullptr;
    lua_Alloc base_alloc_ = nullptr;
    void* base_ud_ = nullptr;
    std::size_t used_ = 0;
    std::size_t limit_ = 0;
    std::size_t reserve_ = 0;           // allowed past limit_ while the daemon's own protected calls run
    int run_protected_ref_ = LUA_NOREF; // protected_call's function, in the registry
    bool exceeded_ = false;
    RunGuard guard_;
    std::string workflows_dir_;
    bool allow_exec_ = true;
    std::shared_ptr<const std::set<std::string>> notifiers_;
    std::shared_ptr<const SourceFiles> lib_;
    LuaRef env_;
};

// The line the calling Lua function is at (for a C function called from Lua), or 0.
int caller_line(lua_State* L);

// Records `line` as registry[key][L's value at `idx`] (the line where a table or key was written).
void remember_line(lua_State* L, const void* key, int idx, int line);

// Runs fn(S) protected, on the main thread S of L's state, so that a Lua error (out of memory included)
// becomes an Error instead of a panic; fn may raise with lua_error/luaL_error. Every Lua API call the
// daemon makes that can allocate or raise goes through here: nothing is allocated before the
// protection is in place, and the daemon's own work may use LuaState::kDaemonReserve past the cap.
Result<void> protected_call(lua_State* L, const std::function<void(lua_State*)>& fn);

// protected_call with `reserve` bytes allowed past the cap meanwhile (0: the cap holds exactly).
Result<void> protected_call_within(lua_State* L, std::size_t reserve,
                                   const std::function<void(lua_State*)>& fn);

// How long Lua code may run without a point to pause at (inside a C call: a table.sort comparator, a
// gsub callback, a pattern match) before it is stopped (SPEC 3).
constexpr std::uint64_t kMaxUnpausedNs = 250'000'000;

// For C code that runs long without a point where the action could pause (a pattern match), called
// every few thousand steps: raises a Lua error once the action's deadline has passed, or once the code
// has run kMaxUnpausedNs since its last pause point, naming `where` ("string.find").
void check_unpaused(lua_State* L, const char* where);

// Puts the count hook back to its normal period (the hook makes it fire at every instruction once a
// deadline has passed, so that no pcall can catch the error for long); called when a run ends.
void reset_hook(LuaState& state);

// A full collection, protected (a collection can run finalizers).
void collect_garbage(LuaState& state);

// Pushes the function of one of the daemon's own chunks (the sandbox's wrappers, the standard library's):
// compiled once per process, loaded as bytecode into each new state. `source` must be a string constant:
// its address names it. Raises on failure (call it protected).
void load_builtin_chunk(lua_State* L, std::string_view source, const char* chunkname);

} // namespace luaflow::scripting
