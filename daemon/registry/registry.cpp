#include "daemon/registry/registry.hpp"

#include "common/log.hpp"
#include "common/read_source_file.hpp"
#include "daemon/registry/workflow_files.hpp"
#include "daemon/store/definitions.hpp"
#include "loop/thread_pool.hpp"

#include <algorithm>
#include <sys/stat.h>
#include <utility>

namespace luaflow::registry {

namespace {

// A reload waits for the directory to be quiet this long (an editor's save is several events)...
constexpr std::uint64_t kDebounceMs = 100;
// ...but never longer than this after the first change it waits for: a file rewritten without pause
// must not keep every other edit from loading (SPEC 5: within 1 s; issue 14 item 14). lodash's maxWait.
constexpr std::uint64_t kMaxWaitMs = 500;

} // namespace

Registry::Registry(uv_loop_t* loop, store::Db& db, std::string dir, SandboxFactory sandbox, Check check)
    : loop_(loop), db_(db), dir_(std::move(dir)), sandbox_(std::move(sandbox)), check_(std::move(check)),
      debounce_(loop), codes_(loop, [this](const scripting::WorkflowDef& def) {
          return scripting::load_code(def, sandbox_(def.id));
      }) {}

const WorkflowEntry* Registry::find(const std::string& id) const {
    auto it = entries_.find(id);
    return it == entries_.end() ? nullptr : &it->second;
}

const std::vector<std::string>& Registry::followers_of(const std::string& workflow) const {
    static const std::vector<std::string> none;
    auto it = followers_.find(workflow);
    return it == followers_.end() ? none : it->second;
}

void Registry::index_followers() {
    followers_.clear();
    for (const auto& [id, e] : entries_)
        if (e.def && e.def->triggers.after.is_object())
            followers_[e.def->triggers.after.value("workflow", "")].push_back(id);
}

// The loop of `after` triggers `def` would close with the workflows loaded now ("a -> b -> a"), as its
// load error. Each workflow names at most one other, so following the names from `def` either ends or
// comes back to it: the workflows already loaded hold no loop (each was checked so).
std::optional<scripting::LoadError> Registry::after_loop(const scripting::WorkflowDef& def) const {
    if (!def.triggers.after.is_object()) return std::nullopt;
    std::string path = def.id;
    std::string next = def.triggers.after.value("workflow", "");
    for (std::size_t steps = 0; steps <= entries_.size(); ++steps) {
        path += " -> " + next;
        if (next == def.id)
            return scripting::LoadError{def.file, def.triggers.line,
                                        "triggers.after: a loop of `after` triggers: " + path +
                                            " (each would start the next for ever)"};
        const WorkflowEntry* e = find(next);
        if (!e || !e->def || !e->def->triggers.after.is_object()) return std::nullopt;
        next = e->def->triggers.after.value("workflow", "");
    }
    return std::nullopt;
}

std::vector<scripting::LoadError> Registry::check_text(const std::string& id, const std::string& path,
                                                       const std::string& text) {
    scripting::SandboxOptions options = sandbox_(id);
    options.lib = lib_.files;
    auto loaded = scripting::load_workflow(id, path, text, options, check_);
    if (auto* err = std::get_if<scripting::LoadError>(&loaded)) return err->all();
    if (auto err = after_loop(*std::get<std::shared_ptr<scripting::WorkflowDef>>(loaded))) return {*err};
    return {};
}

int Registry::error_count() const {
    int n = 0;
    for (const auto& [id, e] : entries_)
        n += e.error ? 1 : 0;
    return n;
}

bool Registry::scripts_changed(const WorkflowEntry& entry) const {
    for (const auto& [rel, stamp] : entry.script_stamps) {
        auto now = stamp_of(dir_ + "/" + rel);
        if (!now || *now != stamp) return true;
    }
    return false;
}

void Registry::load_file(WorkflowEntry& entry, const std::string& path, bool force,
                         std::vector<std::string>& changed, const ReadFile* pre) {
    auto stamp = pre ? std::optional<FileStamp>(pre->stamp) : stamp_of(path);
    if (!stamp) return;
    // An entry in error is tried again at every change: the file it could not read (a script) may be
    // there now. Otherwise only what it was loaded from counts: its file, its scripts, lib/.
    bool stale = force || *stamp != entry.stamp || entry.lib != lib_.files || scripts_changed(entry);
    if (!stale && !entry.error) return;
    // Stamps taken before the reads: a write after them makes the next look load again.
    std::map<std::string, FileStamp> script_stamps;
    for (const auto& [rel, old] : entry.script_stamps)
        if (auto s = stamp_of(dir_ + "/" + rel)) script_stamps.emplace(rel, *s);
    entry.stamp = *stamp;
    entry.lib = lib_.files;
    std::optional<Result<std::string>> read_here;
    const Result<std::string>& text = pre ? pre->text : read_here.emplace(read_source_file(path));
    if (!text) {
        // The message begins "PATH: "; a LoadError names the file itself.
        set_error(entry, scripting::LoadError{path, 0, text.error().message.substr(path.size() + 2)});
        return;
    }
    scripting::SandboxOptions options = sandbox_(entry.id);
    options.lib = lib_.files;
    auto loaded = scripting::load_workflow(entry.id, path, text.value(), options);
    if (auto* err = std::get_if<scripting::LoadError>(&loaded)) {
        set_error(entry, *err);
        return;
    }
    auto def = std::get<std::shared_ptr<scripting::WorkflowDef>>(std::move(loaded));
    if (auto err = check_ ? check_(*def) : std::nullopt) {
        set_error(entry, *err);
        return;
    }
    if (auto err = after_loop(*def)) {
        set_error(entry, *err);
        return;
    }
    entry.script_stamps.clear();
    for (const auto& [rel, script] : def->scripts) {
        auto it = script_stamps.find(rel);
        if (it != script_stamps.end())
            entry.script_stamps.emplace(rel, it->second);
        else if (auto s = stamp_of(dir_ + "/" + rel))
            entry.script_stamps.emplace(rel, *s);
    }
    if (entry.error) log::info("workflow %s loads again", entry.id.c_str());
    entry.error.reset();
    if (entry.def && entry.def->source_hash == def->source_hash) return;
    def->code.reset(); // an idle workflow keeps no Lua state; code_for makes one when it runs
    store::insert_definition(db_.write(), def->source_hash,
                             store::Definition{def->id, def->file, text.value(), def->scripts, *lib_.files});
    entry.def = std::move(def);
    changed.push_back(entry.id);
}

void Registry::set_error(WorkflowEntry& entry, scripting::LoadError error) {
    // Logged once per distinct error, not at every look at an entry that stays broken.
    bool same = entry.error && entry.error->to_string() == error.to_string();
    entry.error = std::move(error);
    if (!same)
        log::error("%s%s", entry.error->to_string().c_str(),
                   entry.def ? " (the last good version stays in use)" : "");
}

void Registry::rescan_lib() {
    LibSnapshot next = scan_lib(dir_, &lib_);
    for (const std::string& e : next.errors)
        log::error("%s", e.c_str());
    lib_ = std::move(next);
}

std::map<std::string, FileStamp> Registry::loaded_stamps() const {
    std::map<std::string, FileStamp> out;
    for (const auto& [id, e] : entries_)
        if (e.def && !e.error) out.emplace(e.file, e.stamp);
    return out;
}

void Registry::reload(bool force, ReloadDone done) {
    force_next_ = force_next_ || force;
    rescan_ = true;
    if (done) waiting_.push_back(std::move(done));
    if (!scanning_) start_scan();
}

void Registry::start_scan() {
    scanning_ = true;
    rescan_ = false;
    const bool force = std::exchange(force_next_, false);
    auto scan = std::make_shared<DirectoryScan>();
    auto finish = [this, scan, force, done = std::exchange(waiting_, {})] {
        scanning_ = false;
        scanned_dirs_ = scan->dirs;
        if (watching_) watch_dirs(std::move(scan->dirs));
        ReloadReport report = apply(std::move(*scan), force);
        for (const ReloadDone& d : done)
            d(report);
        if (rescan_) start_scan();
    };
    std::weak_ptr<int> alive = alive_;
    auto queued = loop::run_in_pool(
        loop_,
        [scan, dir = dir_, lib = lib_, loaded = loaded_stamps(), force] {
            *scan = scan_directory(dir, lib, loaded, force);
        },
        [alive, finish] {
            if (!alive.expired()) finish();
        });
    if (!queued) {
        log::warn("%s; reading the workflows directory on the loop", queued.error().message.c_str());
        *scan = scan_directory(dir_, lib_, loaded_stamps(), force);
        finish();
    }
}

ReloadReport Registry::apply(DirectoryScan scan, bool force) {
    ReloadReport report;
    std::vector<std::string> changed;
    std::map<std::string, bool> seen;
    // Said once, not at every look while the file stays there.
    for (const std::string& e : scan.lib.errors)
        if (std::find(lib_.errors.begin(), lib_.errors.end(), e) == lib_.errors.end())
            log::error("%s", e.c_str());
    lib_ = std::move(scan.lib);
    if (scan.files_error) log::error("%s", scan.files_error->message.c_str());
    const std::vector<WorkflowFile>& files = scan.files;
    for (const WorkflowFile& file : files) {
        const std::string& id = file.id;
        const std::string& path = file.path;
        seen[id] = true;
        auto [it, inserted] = entries_.try_emplace(id);
        WorkflowEntry& entry = it->second;
        if (inserted) {
            entry.id = id;
            entry.file = path;
        }
        if (!file.not_regular.empty()) { // never opened: a FIFO would block the read
            set_error(entry, scripting::LoadError{path, 0, "is " + file.not_regular + ", not read"});
            continue;
        }
        if (!scripting::is_valid_workflow_id(id)) {
            entry.error = scripting::LoadError{path, 0,
                                               "'" + id +
                                                   "' is not a valid workflow id (use letters, digits, "
                                                   "'_', '.', '-', starting with a letter or digit)"};
            continue;
        }
        auto pre = scan.read.find(path);
        load_file(entry, path, force, changed, pre == scan.read.end() ? nullptr : &pre->second);
    }
    for (auto it = entries_.begin(); it != entries_.end();) {
        if (!seen.count(it->first)) {
            log::info("workflow %s removed (%s is gone)", it->first.c_str(), it->second.file.c_str());
            changed.push_back(it->first);
            it = entries_.erase(it);
        } else {
            ++it;
        }
    }
    for (const auto& [id, e] : entries_) {
        if (e.def) ++report.workflows;
        if (e.error) report.errors.push_back(*e.error);
    }
    index_followers();
    if (on_change && !changed.empty()) on_change(changed);
    return report;
}

Result<std::string> Registry::load_only(const std::string& path) {
    std::string name = path.substr(path.find_last_of('/') + 1);
    std::string id = name.size() > 4 && name.compare(name.size() - 4, 4, ".lua") == 0
                         ? name.substr(0, name.size() - 4)
                         : name;
    entries_.clear();
    rescan_lib();
    WorkflowEntry& entry = entries_[id];
    entry.id = id;
    entry.file = path;
    std::vector<std::string> changed;
    load_file(entry, path, true, changed);
    index_followers();
    if (entry.error) return make_error(ErrorCode::invalid, entry.error->to_string());
    if (!entry.def) return make_error(ErrorCode::invalid, path + ": cannot read the file");
    return id;
}

void Registry::watch_path(const std::string& path) {
    auto watch = std::make_unique<loop::FsWatch>(loop_);
    if (int rc = watch->start(path, [this] { schedule_reload(); }); rc != 0) {
        if (rc != UV_ENOENT) log::warn("cannot watch %s: %s", path.c_str(), uv_strerror(rc));
        return;
    }
    watchers_.push_back(std::move(watch));
}

void Registry::watch() {
    // Every directory a workflow may use a file from: the workflows directory, lib/ and the others
    // below it (script files live anywhere in the tree). inotify watches are per directory.
    watch_dirs(scanned_dirs_.empty() ? watched_directories(dir_) : scanned_dirs_);
}

void Registry::watch_dirs(std::vector<std::string> dirs) {
    if (watching_ && dirs == watched_dirs_) return;
    watching_ = true;
    watched_dirs_ = dirs;
    watchers_.clear();
    for (const std::string& d : dirs)
        watch_path(d);
}

void Registry::schedule_reload() {
    std::uint64_t now = uv_now(loop_);
    if (!debounce_.active()) first_change_ms_ = now;
    std::uint64_t deadline = first_change_ms_ + kMaxWaitMs;
    std::uint64_t wait = now >= deadline ? 0 : std::min(kDebounceMs, deadline - now);
    // The scan also finds the directories that came or went since the last look, to watch them.
    debounce_.start(wait, [this] { reload(false); });
    debounce_.unref();
}

Result<std::shared_ptr<const scripting::WorkflowDef>> Registry::load_stored(const std::string& digest) {
    for (const auto& [id, e] : entries_) {
        if (e.def && e.def->source_hash == digest)
            return std::shared_ptr<const scripting::WorkflowDef>(e.def);
    }
    auto row = store::find_definition(db_, digest);
    if (!row) return make_error(ErrorCode::not_found, "definition " + digest + " is not in the store");
    scripting::SandboxOptions options = sandbox_(row->workflow);
    // The script and lib/ text it was stored with, not what is on disk now (SPEC 5). A definition
    // stored before the store kept them reads them from disk, as it did then.
    if (row->lib) {
        options.lib = std::make_shared<const scripting::SourceFiles>(std::move(*row->lib));
        options.scripts = std::make_shared<const scripting::SourceFiles>(std::move(row->scripts));
    }
    auto loaded = scripting::load_workflow(row->workflow, row->file, row->source, options);
    if (auto* err = std::get_if<scripting::LoadError>(&loaded))
        return make_error(ErrorCode::invalid, err->to_string());
    auto def = std::get<std::shared_ptr<scripting::WorkflowDef>>(std::move(loaded));
    def->source_hash = digest; // the name it was stored under, whatever the digest of older stores was
    return std::shared_ptr<const scripting::WorkflowDef>(std::move(def));
}

ReloadReport first_load(Registry& registry, uv_loop_t* loop) {
    std::optional<ReloadReport> loaded;
    registry.reload(false, [&](const ReloadReport& r) { loaded = r; });
    while (!loaded)
        uv_run(loop, UV_RUN_ONCE);
    return std::move(*loaded);
}

} // namespace luaflow::registry
