#include "scripting/lua_state.hpp"

#include "common/time_format.hpp"

#include "common/read_source_file.hpp"

#include "scripting/bounded_pattern.hpp"

#include "scripting/sandbox_globals.hpp"
#include "scripting/sandbox_wrappers.hpp"

#include <luajit.h>
#include <uv.h>

#include <pthread.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>

namespace luaflow::scripting {

namespace {

// Checked every this many VM instructions: cheap, and a few microseconds apart.
constexpr int kHookInstructions = 1000;
// protected_call calls its function directly below this many values on the main thread's stack.
constexpr int kDirectCallMaxTop = 8;

// Sanitizer builds keep every state on the heap: LeakSanitizer does not look for pointers in LuaJIT's
// own mappings, so what only a Lua value holds (an outputs log, held by a userdata) would show as
// leaked while its state lives, and AddressSanitizer sees no access inside them.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

// Registry keys: addresses unique to this file.
const char kRequireCacheKey = 0;

// The lowest address Lua may take this thread's C stack to: half of it stays for the daemon's own
// frames and for what can run between two hook calls (C functions that call Lua, nested). Calls from C
// into Lua nest on the C stack (a gsub callback calling gsub, a comparator sorting); LuaJIT does not
// bound that nesting itself.
std::uintptr_t c_stack_floor() {
    thread_local std::uintptr_t floor = [] {
        pthread_attr_t attr;
        void* base = nullptr;
        std::size_t size = 0;
        if (pthread_getattr_np(pthread_self(), &attr) != 0) return std::uintptr_t{0};
        int rc = pthread_attr_getstack(&attr, &base, &size);
        pthread_attr_destroy(&attr);
        if (rc != 0 || !base) return std::uintptr_t{0};
        constexpr std::size_t kMaxUsable = 4u << 20;
        std::size_t usable = std::min(size / 2, kMaxUsable);
        return reinterpret_cast<std::uintptr_t>(base) + size - usable;
    }();
    return floor;
}

// "file.lua:12" for the Lua code running on L, or "" when it is not Lua code.
std::string running_where(lua_State* L) {
    lua_Debug ar;
    for (int level = 0; lua_getstack(L, level, &ar); ++level) {
        if (!lua_getinfo(L, "Sl", &ar)) break;
        if (ar.currentline > 0) {
            const char* src = ar.source[0] == '@' || ar.source[0] == '=' ? ar.source + 1 : ar.short_src;
            return std::string(src) + ":" + std::to_string(ar.currentline);
        }
    }
    return "";
}

void guard_hook(lua_State* L, lua_Debug*);

// Stops the run: raises the stop message here and, through the hook firing at every instruction, at
// every later instruction until the run ends. The action's own coroutine, when it can yield, yields
// instead: the engine abandons it (a yield from the hook cannot be caught by pcall).
void stop_run(lua_State* L, RunGuard& g) {
    if (L == g.task_thread && lua_isyieldable(L)) {
        lua_yield(L, 0);
        return;
    }
    lua_sethook(L, guard_hook, LUA_MASKCOUNT, 1); // reset_hook puts the period back
    luaL_error(L, "%s", g.stop_message.c_str());
}

void begin_stop(RunGuard& g, std::uint64_t now, lua_State* L, const char* where_prefix) {
    if (g.stopping) return;
    if (g.deadline_ns && now >= g.deadline_ns) {
        g.deadline_hit = true;
        g.stop_message = g.deadline_message;
    } else {
        std::string where = running_where(L);
        g.stop_message = std::string("stopped: ") + where_prefix + " ran " +
                         std::to_string(kMaxUnpausedNs / 1'000'000) + " ms without a point to pause at (" +
                         (where.empty() ? "" : where + "; ") + "see luaflow-workflow(5))";
    }
    g.stopping = true;
}

void guard_hook(lua_State* L, lua_Debug*) {
    LuaState* state = LuaState::from(L);
    if (!state) return;
    // The frame's address, not a local's: under ASan a local may live on a fake stack on the heap.
    if (reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0)) < c_stack_floor())
        luaL_error(L, "C stack overflow: calls from C into Lua (callbacks of gsub, table.sort, __tostring, "
                      "...) nested too deep");
    RunGuard& g = state->guard();
    if (g.stopping) {
        stop_run(L, g);
        return;
    }
    if (!g.deadline_ns && !g.slice_end_ns) return;
    std::uint64_t now = uv_hrtime();
    if (g.deadline_ns && now >= g.deadline_ns) {
        begin_stop(g, now, L, "");
        stop_run(L, g);
        return;
    }
    if (!g.slice_end_ns || now < g.slice_end_ns) return;
    // The slice is over: pause where the whole chain of coroutines up to the action's can yield.
    bool innermost = g.resume_chain.empty() ? L == g.task_thread : L == g.resume_chain.back();
    if (innermost && g.unyieldable_resumers == 0 && lua_isyieldable(L)) {
        if (L == g.task_thread)
            g.preempted = true;
        else
            g.nested_preempted = L;
        lua_yield(L, 0);
        return;
    }
    if (g.unpaused_since_ns && now - g.unpaused_since_ns >= kMaxUnpausedNs) {
        begin_stop(g, now, L, "code inside a C call");
        stop_run(L, g);
    }
}

void open_lib(lua_State* L, lua_CFunction open, const char* name) {
    lua_pushcfunction(L, open);
    lua_pushstring(L, name);
    lua_call(L, 1, 0);
}

// Copies the listed fields of the global table `lib` into a new table left on the stack.
void copy_fields(lua_State* L, const char* lib, std::initializer_list<const char*> names) {
    lua_newtable(L);
    lua_getglobal(L, lib);
    for (const char* n : names) {
        lua_getfield(L, -1, n);
        lua_setfield(L, -3, n);
    }
    lua_pop(L, 1);
}

bool is_bytecode(const char* s, size_t n) {
    return n > 0 && s[0] == '\x1b';
}

// load(chunk [, chunkname [, mode [, env]]]) and loadstring(s [, chunkname]): text only, and the chunk's
// globals are the sandbox unless an env is given.
int l_load(lua_State* L) {
    size_t n = 0;
    std::string text;
    const char* name;
    if (lua_type(L, 1) == LUA_TFUNCTION) {
        // A reader function: concatenate the pieces it returns.
        for (;;) {
            lua_pushvalue(L, 1);
            lua_call(L, 0, 1);
            if (lua_isnil(L, -1)) {
                lua_pop(L, 1);
                break;
            }
            size_t len = 0;
            const char* piece = lua_tolstring(L, -1, &len);
            if (!piece) return luaL_error(L, "load: reader function must return a string");
            if (len == 0) {
                lua_pop(L, 1);
                break;
            }
            text.append(piece, len);
            lua_pop(L, 1);
        }
        name = luaL_optstring(L, 2, "=(load)");
    } else {
        const char* s = luaL_checklstring(L, 1, &n);
        text.assign(s, n);
        name = luaL_optstring(L, 2, s);
    }
    if (is_bytecode(text.data(), text.size())) {
        lua_pushnil(L);
        lua_pushliteral(L, "load: loading bytecode is not allowed");
        return 2;
    }
    if (luaL_loadbuffer(L, text.data(), text.size(), name) != 0) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    if (lua_istable(L, 4))
        lua_pushvalue(L, 4);
    else
        lua_pushvalue(L, LUA_GLOBALSINDEX); // the thread's: the sandbox's globals
    lua_setfenv(L, -2);
    return 1;
}

int l_collectgarbage(lua_State* L) {
    const char* opt = luaL_optstring(L, 1, "collect");
    if (std::strcmp(opt, "count") != 0)
        return luaL_error(L, "collectgarbage: only \"count\" is allowed in the sandbox, not \"%s\"", opt);
    lua_pushnumber(L, lua_gc(L, LUA_GCCOUNT, 0) + lua_gc(L, LUA_GCCOUNTB, 0) / 1024.0);
    return 1;
}

bool valid_module_name(const std::string& name) {
    if (name.rfind("lib.", 0) != 0 || name.size() == 4) return false;
    bool part_start = true;
    for (size_t i = 4; i < name.size(); ++i) {
        char c = name[i];
        if (c == '.') {
            if (part_start) return false;
            part_start = true;
            continue;
        }
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
        part_start = false;
    }
    return !part_start;
}

int l_require(lua_State* L) {
    std::string name = luaL_checkstring(L, 1);
    if (!valid_module_name(name))
        return luaL_error(L, "require: '%s' is not a module name like \"lib.name\" (letters, digits, '_')",
                          name.c_str());
    lua_pushlightuserdata(L, const_cast<char*>(&kRequireCacheKey));
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_getfield(L, -1, name.c_str());
    if (!lua_isnil(L, -1)) return 1;
    lua_pop(L, 1);
    LuaState* state = LuaState::from(L);
    std::string rel = name;
    for (char& c : rel)
        if (c == '.') c = '/';
    std::string path = state->workflows_dir() + "/" + rel + ".lua";
    std::string code;
    if (const SourceFiles* lib = state->lib()) {
        // The snapshot the definition was loaded with: what a running execution started with.
        auto it = lib->find(rel + ".lua");
        if (it == lib->end())
            return luaL_error(L, "require: module '%s' not found (no file %s when the workflow was loaded)",
                              name.c_str(), path.c_str());
        code = it->second;
    } else {
        // Without a snapshot (validate, --check): from disk, a regular file only (a FIFO would block).
        auto text = read_source_file(path);
        if (!text)
            return luaL_error(L, "require: module '%s' not found (%s)", name.c_str(),
                              text.error().message.c_str());
        code = std::move(text.value());
    }
    if (is_bytecode(code.data(), code.size()))
        return luaL_error(L, "require: %s: loading bytecode is not allowed", path.c_str());
    std::string chunkname = "@" + path;
    if (luaL_loadbuffer(L, code.data(), code.size(), chunkname.c_str()) != 0) return lua_error(L);
    lua_pushvalue(L, LUA_GLOBALSINDEX);
    lua_setfenv(L, -2);
    lua_pushstring(L, name.c_str());
    lua_call(L, 1, 1);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, name.c_str());
    return 1;
}

// os.time() and os.date(fmt) without a time read the clock everything else reads: a test run moves it
// (luaflowctl test --at, --fast; SPEC 13). With a time they are LuaJIT's own (the upvalue).
int l_os_time(lua_State* L) {
    if (!lua_isnoneornil(L, 1)) {
        lua_pushvalue(L, lua_upvalueindex(1));
        lua_insert(L, 1);
        lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
        return lua_gettop(L);
    }
    lua_pushnumber(L, std::floor(static_cast<double>(now_unix_ms()) / 1000.0));
    return 1;
}

int l_os_date(lua_State* L) {
    if (lua_isnoneornil(L, 2)) {
        if (lua_isnoneornil(L, 1)) {
            lua_settop(L, 0);
            lua_pushliteral(L, "%c");
        }
        lua_settop(L, 1);
        lua_pushnumber(L, std::floor(static_cast<double>(now_unix_ms()) / 1000.0));
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

// Builds the sandbox global table (an allowlist) and leaves it on the stack. The library tables are the
// state's own (one state per workflow), handed over whole where every member is safe.
void build_sandbox(lua_State* L) {
    lua_newtable(L);
    int env = lua_gettop(L);
    static const char* const base[] = {"assert",       "error",        "ipairs",   "pairs",    "next",
                                       "pcall",        "xpcall",       "select",   "tonumber", "tostring",
                                       "type",         "unpack",       "rawequal", "rawget",   "rawset",
                                       "setmetatable", "getmetatable", "_VERSION"};
    for (const char* name : base) {
        lua_getglobal(L, name);
        lua_setfield(L, env, name);
    }
    // string without dump, so that ("x"):dump() is gone too; its metatable cannot be reached or changed.
    lua_getglobal(L, "string");
    install_bounded_patterns(L, lua_gettop(L));
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_setfield(L, env, "string");
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushliteral(L, "protected");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);
    for (const char* lib : {"table", "math", "bit", "coroutine"}) {
        lua_getglobal(L, lib);
        lua_setfield(L, env, lib);
    }
    copy_fields(L, "os", {"time", "clock", "date"});
    for (auto [name, fn] : {std::pair<const char*, lua_CFunction>{"time", l_os_time}, {"date", l_os_date}}) {
        lua_getfield(L, -1, name);
        lua_pushcclosure(L, fn, 1);
        lua_setfield(L, -2, name);
    }
    lua_setfield(L, env, "os");

    lua_pushcfunction(L, l_collectgarbage);
    lua_setfield(L, env, "collectgarbage");
    lua_pushcfunction(L, l_load);
    lua_pushvalue(L, -1);
    lua_setfield(L, env, "load");
    lua_setfield(L, env, "loadstring");
    lua_pushcfunction(L, l_require);
    lua_setfield(L, env, "require");
    lua_pushvalue(L, env);
    lua_setfield(L, env, "_G");
    install_sandbox_wrappers(L, env);
}

// What the libraries registered but the sandbox does not offer is dropped, so the collector can free
// it: a workflow's idle state is mostly this.
void drop_unused_libraries(lua_State* L) {
    for (const char* name : {"os", "dofile", "loadfile", "load", "loadstring", "print", "getfenv", "setfenv",
                             "collectgarbage", "gcinfo", "newproxy", "module", "require"}) {
        lua_pushnil(L);
        lua_setglobal(L, name);
    }
    lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
    if (lua_istable(L, -1)) {
        lua_pushnil(L);
        lua_setfield(L, -2, "os");
    }
    lua_pop(L, 1);
}

int l_exec_refused(lua_State* L) {
    return luaL_error(L, "exec: running programs is refused by sandbox.exec = false in the config");
}

int setup(lua_State* L) {
    auto* options = static_cast<const SandboxOptions*>(lua_touserdata(L, 1));
    open_lib(L, luaopen_base, "");
    open_lib(L, luaopen_string, LUA_STRLIBNAME);
    open_lib(L, luaopen_table, LUA_TABLIBNAME);
    open_lib(L, luaopen_math, LUA_MATHLIBNAME);
    open_lib(L, luaopen_bit, LUA_BITLIBNAME);
    open_lib(L, luaopen_os, LUA_OSLIBNAME);
    lua_pushlightuserdata(L, const_cast<char*>(&kRequireCacheKey));
    lua_newtable(L);
    lua_rawset(L, LUA_REGISTRYINDEX);
    // luaL_unref keeps its free list in registry[0]. With the key there from the start, dropping a
    // reference (in a destructor, outside any protection) only overwrites values: it never allocates.
    lua_pushinteger(L, 0);
    lua_rawseti(L, LUA_REGISTRYINDEX, 0);
    build_sandbox(L);
    int env = lua_gettop(L);
    drop_unused_libraries(L);
    if (options->install_globals) options->install_globals(L, env);
    if (!options->allow_exec) {
        lua_pushcfunction(L, l_exec_refused);
        lua_setfield(L, env, "exec");
    }
    lua_newtable(L);
    int globals = lua_gettop(L);
    install_sandbox_globals(L, env, globals);
    // From now on these are the globals of the state: coroutines, modules and loaded chunks see them.
    lua_pushvalue(L, globals);
    lua_replace(L, LUA_GLOBALSINDEX);
    return 1; // the globals table
}

struct ProtectedFn {
    const std::function<void(lua_State*)>* fn;
};

// Run by lua_cpcall, which creates this function's closure inside its protected frame: nothing is
// allocated before the protection is in place.
int run_protected(lua_State* L) {
    auto* p = static_cast<ProtectedFn*>(lua_touserdata(L, 1));
    lua_pop(L, 1);
    (*p->fn)(L);
    return 0;
}

// The error object at the top of L as text, without allocating (lua_tostring would convert a number in
// place, an allocation outside any protection).
std::string error_object_text(lua_State* L) {
    switch (lua_type(L, -1)) {
    case LUA_TSTRING: {
        size_t n = 0;
        const char* s = lua_tolstring(L, -1, &n);
        return std::string(s, n);
    }
    case LUA_TNUMBER:
        return std::to_string(lua_tonumber(L, -1));
    case LUA_TNIL:
        return "error(nil)";
    default:
        return std::string("error object is a ") + lua_typename(L, lua_type(L, -1));
    }
}

} // namespace

LuaState* LuaState::from(lua_State* L) {
    void* ud = nullptr;
    lua_Alloc f = lua_getallocf(L, &ud);
    return f == &LuaState::alloc ? static_cast<LuaState*>(ud) : nullptr;
}

// realloc/free as a lua_Alloc: the allocator behind alloc() for states without an arena of their own.
static void* heap_alloc(void*, void* ptr, std::size_t, std::size_t nsize) {
    if (nsize == 0) {
        std::free(ptr);
        return nullptr;
    }
    return std::realloc(ptr, nsize);
}

void* LuaState::alloc(void* ud, void* ptr, std::size_t osize, std::size_t nsize) {
    auto* self = static_cast<LuaState*>(ud);
    std::size_t old = ptr ? osize : 0;
    if (nsize > old && self->limit_ && self->used_ + (nsize - old) > self->limit_ + self->reserve_) {
        self->exceeded_ = true;
        return nullptr; // LuaJIT raises "not enough memory" in the running code
    }
    void* p = self->base_alloc_(self->base_ud_, ptr, osize, nsize);
    if (nsize == 0) {
        self->used_ -= old;
        return nullptr;
    }
    if (p) self->used_ = self->used_ - old + nsize;
    return p;
}

Result<std::unique_ptr<LuaState>> LuaState::create(const SandboxOptions& options) {
    std::unique_ptr<LuaState> s(new LuaState());
    if (options.own_arena && !kSanitized) {
        // LuaJIT's own allocator (a per-state arena that takes no lock) behind our counting one: glibc's
        // malloc cost a lone execution 5 % more instructions. What the new state holds is counted from
        // its GC count, then every byte through alloc().
        s->L_ = luaL_newstate();
        if (!s->L_) return make_error(ErrorCode::internal, "cannot create a Lua state: out of memory");
        s->base_alloc_ = lua_getallocf(s->L_, &s->base_ud_);
        s->used_ = static_cast<std::size_t>(lua_gc(s->L_, LUA_GCCOUNT, 0)) * 1024 +
                   static_cast<std::size_t>(lua_gc(s->L_, LUA_GCCOUNTB, 0));
        lua_setallocf(s->L_, &LuaState::alloc, s.get());
    } else {
        // malloc's heap, counted from the first byte: a state that lives for one file's evaluation
        // reuses what the one before freed, where an arena is a fresh mapping and fresh pages (1000
        // workflows loaded at start: 177 against 151 ms, median of 5).
        s->base_alloc_ = &heap_alloc;
        s->L_ = lua_newstate(&LuaState::alloc, s.get());
        if (!s->L_) return make_error(ErrorCode::internal, "cannot create a Lua state: out of memory");
    }
    s->limit_ = options.memory_limit;
    s->workflows_dir_ = options.workflows_dir;
    s->allow_exec_ = options.allow_exec;
    s->notifiers_ = options.notifiers;
    s->lib_ = options.lib;
    luaJIT_setmode(s->L_, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
    lua_sethook(s->L_, guard_hook, LUA_MASKCOUNT, kHookInstructions);
    LuaState* self = s.get();
    // Not protected_call: the sandbox itself counts against the cap, without the daemon's reserve.
    auto built = protected_call_within(s->L_, 0, [&](lua_State* L) {
        lua_pushcfunction(L, setup);
        lua_pushlightuserdata(L, const_cast<SandboxOptions*>(&options));
        lua_call(L, 1, 1);
        self->env_ = LuaRef::pop(L);
        lua_pushcfunction(L, run_protected);
        self->run_protected_ref_ = luaL_ref(L, LUA_REGISTRYINDEX);
    });
    if (!built)
        return make_error(ErrorCode::internal, "cannot set up the Lua sandbox: " + built.error().message);
    return s;
}

LuaState::~LuaState() {
    env_.reset();
    if (L_) {
        // lua_close releases the arena itself only when it sees LuaJIT's allocator in place.
        lua_setallocf(L_, base_alloc_, base_ud_);
        lua_close(L_);
    }
}

Result<void> LuaState::load(std::string_view code, const std::string& chunkname) {
    if (is_bytecode(code.data(), code.size())) {
        // "@file" names a file, "=name" a name: the message shows it as Lua's own would.
        bool marked = !chunkname.empty() && (chunkname[0] == '@' || chunkname[0] == '=');
        return make_error(ErrorCode::invalid,
                          (marked ? chunkname.substr(1) : chunkname) + ":1: loading bytecode is not allowed");
    }
    // The parser runs protected inside luaL_loadbuffer; out of memory is a returned error.
    if (luaL_loadbuffer(L_, code.data(), code.size(), chunkname.c_str()) != 0) {
        std::string msg = error_object_text(L_);
        lua_pop(L_, 1);
        return make_error(ErrorCode::invalid, msg);
    }
    env_.push(L_);
    lua_setfenv(L_, -2);
    return {};
}

int caller_line(lua_State* L) {
    lua_Debug ar;
    if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar)) return ar.currentline;
    return 0;
}

void remember_line(lua_State* L, const void* key, int idx, int line) {
    if (idx < 0 && idx > LUA_REGISTRYINDEX) idx = lua_gettop(L) + idx + 1;
    lua_pushlightuserdata(L, const_cast<void*>(key));
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, idx);
    lua_pushnumber(L, line);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

Result<void> protected_call(lua_State* L, const std::function<void(lua_State*)>& fn) {
    // The daemon's own calls may go a little past the cap, so that its bookkeeping on a state the
    // action filled (a closure, a few stack slots, a registry slot) cannot fail; what the action's
    // own data needs beyond that still fails here, as an error.
    return protected_call_within(L, LuaState::kDaemonReserve, fn);
}

Result<void> protected_call_within(lua_State* L, std::size_t reserve,
                                   const std::function<void(lua_State*)>& fn) {
    // Always the main thread: lua_cpcall needs a thread that is not suspended, and the caller may hold
    // a coroutine that is.
    LuaState* state = LuaState::from(L);
    if (state) L = state->L();
    ProtectedFn p{&fn};
    int top = lua_gettop(L);
    if (state) state->reserve_ += reserve;
    int rc;
    if (state && state->run_protected_ref_ != LUA_NOREF && top < kDirectCallMaxTop) {
        // The function made once at the state's creation: lua_cpcall makes a closure per call, garbage
        // for the collector (six per Lua action). Pushing two values onto the main thread's stack, well
        // within the LUA_MINSTACK slots it always has free here, allocates nothing outside protection.
        lua_rawgeti(L, LUA_REGISTRYINDEX, state->run_protected_ref_);
        lua_pushlightuserdata(L, &p);
        rc = lua_pcall(L, 1, 0, 0);
    } else {
        rc = lua_cpcall(L, run_protected, &p);
    }
    if (state) state->reserve_ -= reserve;
    if (rc != 0) {
        std::string msg = error_object_text(L);
        lua_settop(L, top);
        return make_error(ErrorCode::internal, msg);
    }
    lua_settop(L, top);
    return {};
}

void check_unpaused(lua_State* L, const char* where) {
    LuaState* state = LuaState::from(L);
    if (!state) return;
    RunGuard& g = state->guard();
    if (g.stopping) {
        lua_sethook(L, guard_hook, LUA_MASKCOUNT, 1);
        luaL_error(L, "%s", g.stop_message.c_str());
    }
    if (!g.deadline_ns && !g.unpaused_since_ns) return;
    std::uint64_t now = uv_hrtime();
    bool late = g.deadline_ns && now >= g.deadline_ns;
    if (!late && !(g.unpaused_since_ns && now - g.unpaused_since_ns >= kMaxUnpausedNs)) return;
    begin_stop(g, now, L, where);
    lua_sethook(L, guard_hook, LUA_MASKCOUNT, 1);
    luaL_error(L, "%s", g.stop_message.c_str());
}

void reset_hook(LuaState& state) {
    lua_sethook(state.L(), guard_hook, LUA_MASKCOUNT, kHookInstructions);
}

void collect_garbage(LuaState& state) {
    (void)protected_call(state.L(), [](lua_State* L) { lua_gc(L, LUA_GCCOLLECT, 0); });
}

} // namespace luaflow::scripting

namespace luaflow::scripting {

namespace {

int append_bytes(lua_State*, const void* p, std::size_t size, void* ud) {
    static_cast<std::string*>(ud)->append(static_cast<const char*>(p), size);
    return 0;
}

} // namespace

void load_builtin_chunk(lua_State* L, std::string_view source, const char* chunkname) {
    // Parsing these in every new state was a third of loading a workflow file (issue 16, start-up).
    static std::mutex mutex;
    static std::unordered_map<const char*, std::string> compiled; // by the source's address
    const std::string* bytecode = nullptr;                        // a map's node: stays where it is
    {
        std::lock_guard lock(mutex);
        auto it = compiled.find(source.data());
        if (it == compiled.end()) {
            std::string dumped;
            if (lua_State* S = luaL_newstate()) {
                if (luaL_loadbuffer(S, source.data(), source.size(), chunkname) == 0)
                    lua_dump(S, append_bytes, &dumped);
                lua_close(S);
            }
            it = compiled.emplace(source.data(), std::move(dumped)).first;
        }
        bytecode = &it->second;
    }
    // Not compiled (no memory, a syntax error): from the text, whose error is then the one raised.
    std::string_view chunk = bytecode->empty() ? source : std::string_view(*bytecode);
    if (luaL_loadbuffer(L, chunk.data(), chunk.size(), chunkname) != 0) lua_error(L);
}

} // namespace luaflow::scripting
