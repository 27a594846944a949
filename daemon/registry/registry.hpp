#pragma once
// The loaded workflows: the last good definition of each file in the workflows directory, its latest
// load error, and hot reload (SPEC 5): a change takes effect within 1 s, a broken edit never replaces
// the last good version.
#include "daemon/registry/code_cache.hpp"
#include "daemon/registry/directory_scan.hpp"
#include "daemon/registry/lib_snapshot.hpp"
#include "daemon/store/db.hpp"
#include "loop/uv_handle.hpp"
#include "scripting/workflow_loader.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace luaflow::registry {

struct WorkflowEntry {
    std::string id;
    std::string file;
    // Last good version; null if it never loaded. It holds no Lua state: Registry::code_for makes one.
    std::shared_ptr<const scripting::WorkflowDef> def;
    std::optional<scripting::LoadError> error; // the latest load's error, if it failed
    // What the latest load read, to tell whether to load again: the file, its scripts, the lib/ snapshot.
    FileStamp stamp;
    std::map<std::string, FileStamp> script_stamps; // by path relative to the workflows directory
    std::shared_ptr<const scripting::SourceFiles> lib;
};

struct ReloadReport {
    int workflows = 0;
    std::vector<scripting::LoadError> errors;
};

class Registry {
  public:
    using SandboxFactory = std::function<scripting::SandboxOptions(const std::string& workflow)>;
    // A check of a loaded definition beyond the loader's own (the schedule's, handed in by the engine so
    // that the registry does not depend on the scheduler): nothing, or the load error.
    using Check = std::function<std::optional<scripting::LoadError>(const scripting::WorkflowDef&)>;

    Registry(uv_loop_t* loop, store::Db& db, std::string dir, SandboxFactory sandbox, Check check);

    using ReloadDone = std::function<void(const ReloadReport&)>;
    // Looks at the directory on the thread pool (blocking file I/O: issue 14), then, on the loop, loads
    // new and changed workflows (a change of the file, of a `script` file it runs or under lib/) and
    // drops removed ones; `done` gets the report. `force` reloads every file (SIGHUP, luaflowctl
    // reload). One look is out at a time: a request that comes meanwhile is served by the next one.
    void reload(bool force, ReloadDone done = nullptr);
    // Loads one file as the only workflow (luaflowctl test); returns its id or the load error.
    Result<std::string> load_only(const std::string& path);
    // Starts watching the directory and every directory below it (lib/, script files), as the last
    // look found them, and reloads ~100 ms after the last change, and at most 500 ms after the first
    // one while changes keep coming.
    void watch();
    void set_dir(std::string dir) { dir_ = std::move(dir); }
    const std::string& dir() const { return dir_; }

    const WorkflowEntry* find(const std::string& id) const;
    // The workflows whose `after` trigger names `workflow` (their last good versions), by id.
    const std::vector<std::string>& followers_of(const std::string& workflow) const;
    const std::map<std::string, WorkflowEntry>& all() const { return entries_; }
    int error_count() const;

    // Every error `text` would have as the workflow `id` at `path` (its sandbox, lib/, the schedule's check,
    // the loop of `after` triggers), in source order, without keeping anything: PUT /v1/workflows/ID.
    std::vector<scripting::LoadError> check_text(const std::string& id, const std::string& path,
                                                 const std::string& text);

    // A definition from the store (the text an execution started with), loaded into a fresh state.
    Result<std::shared_ptr<const scripting::WorkflowDef>> load_stored(const std::string& digest);

    // The definition's Lua state and functions, made on first use and kept while in use (CodeCache).
    Result<std::shared_ptr<const scripting::WorkflowCode>>
    code_for(const std::shared_ptr<const scripting::WorkflowDef>& def) {
        return codes_.acquire(def);
    }
    const CodeCache& codes() const { return codes_; }

    // Called after each reload with the ids whose definition changed or went away.
    std::function<void(const std::vector<std::string>& changed)> on_change;

  private:
    // `pre`: the file as the scan read it, or null to read it here.
    void load_file(WorkflowEntry& entry, const std::string& path, bool force,
                   std::vector<std::string>& changed, const ReadFile* pre = nullptr);
    ReloadReport apply(DirectoryScan scan, bool force);
    std::map<std::string, FileStamp> loaded_stamps() const;
    void start_scan();
    void watch_dirs(std::vector<std::string> dirs);
    bool scripts_changed(const WorkflowEntry& entry) const;
    void set_error(WorkflowEntry& entry, scripting::LoadError error);
    std::optional<scripting::LoadError> after_loop(const scripting::WorkflowDef& def) const;
    void index_followers();
    void rescan_lib();
    void watch_path(const std::string& path);
    void schedule_reload();

    uv_loop_t* loop_;
    store::Db& db_;
    std::string dir_;
    SandboxFactory sandbox_;
    Check check_;
    std::map<std::string, WorkflowEntry> entries_;
    std::map<std::string, std::vector<std::string>> followers_; // by the workflow their `after` names
    LibSnapshot lib_;
    std::vector<std::unique_ptr<loop::FsWatch>> watchers_;
    std::vector<std::string> watched_dirs_;
    bool watching_ = false;
    loop::Timer debounce_;
    std::uint64_t first_change_ms_ = 0;     // loop time of the first change the debounce waits for
    bool scanning_ = false;                 // a look is on the thread pool
    bool rescan_ = false;                   // a change or a request came while it was: look again after it
    bool force_next_ = false;               // the next look reloads every file
    std::vector<ReloadDone> waiting_;       // for the next look's report
    std::vector<std::string> scanned_dirs_; // the directories the last look found, to watch
    std::shared_ptr<int> alive_ = std::make_shared<int>(0); // a pool job's result finds it gone
    CodeCache codes_;
};

// The first look at the directory, before anything else is served (start-up, tests): reload() with the
// loop run until its report is in.
ReloadReport first_load(Registry& registry, uv_loop_t* loop);

} // namespace luaflow::registry
