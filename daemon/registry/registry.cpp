#include "daemon/registry/registry.hpp"

#include "common/log.hpp"
#include "daemon/registry/workflow_files.hpp"
#include "daemon/schedule/check.hpp"
#include "daemon/store/executions.hpp"

#include <fstream>
#include <sstream>
#include <sys/stat.h>

namespace luaflow::registry {

namespace {

constexpr std::uint64_t kDebounceMs = 100;

std::optional<std::string> read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

} // namespace

Registry::Registry(uv_loop_t* loop, store::Db& db, std::string dir, SandboxFactory sandbox)
    : loop_(loop), db_(db), dir_(std::move(dir)), sandbox_(std::move(sandbox)), debounce_(loop) {}

const WorkflowEntry* Registry::find(const std::string& id) const {
    auto it = entries_.find(id);
    return it == entries_.end() ? nullptr : &it->second;
}

int Registry::error_count() const {
    int n = 0;
    for (const auto& [id, e] : entries_)
        n += e.error ? 1 : 0;
    return n;
}

void Registry::load_file(WorkflowEntry& entry, const std::string& path, bool force,
                         std::vector<std::string>& changed) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return;
    std::int64_t mtime = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
    if (!force && mtime == entry.mtime_ns && st.st_size == entry.size) return;
    entry.mtime_ns = mtime;
    entry.size = st.st_size;
    auto text = read_text(path);
    if (!text) {
        entry.error = scripting::LoadError{path, 0, "cannot read the file"};
        log::error("%s", entry.error->to_string().c_str());
        return;
    }
    std::string digest = scripting::source_digest(*text);
    if (!force && entry.def && entry.def->source_hash == digest) {
        entry.error.reset();
        return;
    }
    auto loaded = schedule::checked(scripting::load_workflow(entry.id, path, *text, sandbox_(entry.id)));
    if (auto* err = std::get_if<scripting::LoadError>(&loaded)) {
        entry.error = *err;
        log::error("%s%s", err->to_string().c_str(),
                   entry.def ? " (the last good version stays in use)" : "");
        return;
    }
    auto def = std::get<std::shared_ptr<scripting::WorkflowDef>>(std::move(loaded));
    bool same = entry.def && entry.def->source_hash == def->source_hash;
    store::insert_definition(db_, def->source_hash, def->id, def->file, *text);
    entry.def = std::move(def);
    entry.error.reset();
    if (!same) changed.push_back(entry.id);
}

ReloadReport Registry::reload(bool force) {
    ReloadReport report;
    std::vector<std::string> changed;
    std::map<std::string, bool> seen;
    std::vector<WorkflowFile> files;
    if (auto scanned = workflow_files(dir_))
        files = std::move(scanned.value());
    else
        log::error("%s", scanned.error().message.c_str());
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
        if (!scripting::is_valid_workflow_id(id)) {
            entry.error = scripting::LoadError{path, 0,
                                               "'" + id +
                                                   "' is not a valid workflow id (use letters, digits, "
                                                   "'_', '.', '-', starting with a letter or digit)"};
            continue;
        }
        load_file(entry, path, force, changed);
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
    if (on_change && !changed.empty()) on_change(changed);
    return report;
}

Result<std::string> Registry::load_only(const std::string& path) {
    std::string name = path.substr(path.find_last_of('/') + 1);
    std::string id = name.size() > 4 && name.compare(name.size() - 4, 4, ".lua") == 0
                         ? name.substr(0, name.size() - 4)
                         : name;
    entries_.clear();
    WorkflowEntry& entry = entries_[id];
    entry.id = id;
    entry.file = path;
    std::vector<std::string> changed;
    load_file(entry, path, true, changed);
    if (entry.error) return make_error(ErrorCode::invalid, entry.error->to_string());
    if (!entry.def) return make_error(ErrorCode::invalid, path + ": cannot read the file");
    return id;
}

void Registry::watch_path(const std::string& path, bool lib) {
    auto* box = new FsEventBox();
    box->owner = this;
    box->lib = lib;
    uv_fs_event_init(loop_, &box->uv);
    loop::UvHandle<FsEventBox> handle(box);
    int rc = uv_fs_event_start(
        &box->uv,
        [](uv_fs_event_t* h, const char*, int, int) {
            if (auto* b = loop::box_of<FsEventBox>(h)) b->owner->schedule_reload(b->lib);
        },
        path.c_str(), 0);
    if (rc != 0) {
        if (rc != UV_ENOENT) log::warn("cannot watch %s: %s", path.c_str(), uv_strerror(rc));
        return;
    }
    // The watcher must not keep the loop alive on its own.
    uv_unref(handle.handle());
    watchers_.push_back(std::move(handle));
}

void Registry::watch() {
    watchers_.clear();
    watch_path(dir_, false);
    watch_path(dir_ + "/lib", true);
}

void Registry::schedule_reload(bool force) {
    pending_force_ = pending_force_ || force;
    debounce_.start(kDebounceMs, [this] {
        bool f = pending_force_;
        pending_force_ = false;
        // lib/ may have been created since the last watch() call.
        if (watchers_.size() < 2) watch();
        reload(f);
    });
    debounce_.unref();
}

Result<std::shared_ptr<const scripting::WorkflowDef>> Registry::load_stored(const std::string& digest) {
    for (const auto& [id, e] : entries_) {
        if (e.def && e.def->source_hash == digest)
            return std::shared_ptr<const scripting::WorkflowDef>(e.def);
    }
    auto row = store::find_definition(db_, digest);
    if (!row) return make_error(ErrorCode::not_found, "definition " + digest + " is not in the store");
    auto loaded = scripting::load_workflow(row->workflow, row->file, row->source, sandbox_(row->workflow));
    if (auto* err = std::get_if<scripting::LoadError>(&loaded))
        return make_error(ErrorCode::invalid, err->to_string());
    return std::shared_ptr<const scripting::WorkflowDef>(
        std::get<std::shared_ptr<scripting::WorkflowDef>>(loaded));
}

} // namespace luaflow::registry
