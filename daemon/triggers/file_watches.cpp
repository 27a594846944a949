#include "daemon/triggers/file_watches.hpp"

#include "common/log.hpp"
#include "loop/thread_pool.hpp"

#include <dirent.h>
#include <filesystem>
#include <fnmatch.h>
#include <sys/stat.h>
#include <vector>

namespace luaflow::triggers {

namespace {

// A regular file's state (a symbolic link is followed), or nothing: gone, or not a regular file.
std::optional<store::FileState> file_state(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
    return store::FileState{static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec,
                            static_cast<std::int64_t>(st.st_size)};
}

bool matches(const std::string& pattern, const std::string& name) {
    return ::fnmatch(pattern.c_str(), name.c_str(), FNM_PERIOD) == 0;
}

} // namespace

// What a stat of the watched directory found: 0 and its inode, or a libuv error (UV_ENOENT, UV_ENOTDIR).
struct FileWatches::DirState {
    int rc = UV_ENOENT;
    ino_t ino = 0;

    static DirState of(const std::string& dir) {
        struct stat st {};
        if (::stat(dir.c_str(), &st) != 0) return {};
        if (!S_ISDIR(st.st_mode)) return {UV_ENOTDIR, 0};
        return {0, st.st_ino};
    }
};

struct FileWatches::Watch {
    explicit Watch(uv_loop_t* loop) : look_again(loop) {}

    std::string workflow;
    nlohmann::json spec;  // the trigger as written: a reload that changes it makes a new watch
    std::string dir;      // absolute, normalised
    std::string dir_name; // its last component: libuv names the directory's own events so
    std::string pattern;
    bool on_create = false, on_modify = false, on_delete = false;
    std::unique_ptr<loop::DirWatch> dir_watch;
    ino_t dir_ino = 0; // of the directory watched: one made again at its path is another
    loop::Timer look_again;
    bool missing = false; // said once until it is back
    bool looking = false; // a stat of the directory is on the pool: one at a time (it may hang)
    std::map<std::string, std::unique_ptr<loop::Timer>> quiet; // by file name: its debounce
    // Pool jobs of a watch that has gone (a reload, the shutdown) find this expired and do nothing.
    std::shared_ptr<int> alive = std::make_shared<int>(0);
};

FileWatches::FileWatches(uv_loop_t* loop, store::Db& db, registry::Registry& registry,
                         exec::Submitter& executor)
    : loop_(loop), db_(db), registry_(registry), executor_(executor) {}

FileWatches::~FileWatches() = default;

void FileWatches::start() {
    for (const auto& [id, entry] : registry_.all())
        refresh(id);
}

void FileWatches::stop() {
    stopped_ = true;
    watches_.clear();
}

void FileWatches::refresh(const std::string& workflow) {
    if (stopped_) return;
    const registry::WorkflowEntry* entry = registry_.find(workflow);
    nlohmann::json spec = entry && entry->def ? entry->def->triggers.watch : nlohmann::json();
    auto it = watches_.find(workflow);
    if (it != watches_.end() && it->second->spec == spec) return;
    if (it != watches_.end()) watches_.erase(it);
    if (!spec.is_object()) return;
    auto w = std::make_unique<Watch>(loop_);
    w->workflow = workflow;
    w->spec = spec;
    std::filesystem::path dir = spec.value("path", "");
    if (dir.is_relative()) dir = std::filesystem::path(registry_.dir()) / dir;
    w->dir = dir.lexically_normal().string();
    while (w->dir.size() > 1 && w->dir.back() == '/')
        w->dir.pop_back();
    w->dir_name = std::filesystem::path(w->dir).filename().string();
    w->pattern = spec.value("pattern", "*");
    nlohmann::json events = spec.value("events", nlohmann::json::array({"create", "modify"}));
    for (const auto& e : events) {
        w->on_create = w->on_create || e == "create";
        w->on_modify = w->on_modify || e == "modify";
        w->on_delete = w->on_delete || e == "delete";
    }
    Watch& ref = *w;
    watches_.emplace(workflow, std::move(w));
    arm(ref);
}

// The directory is looked at on the pool (a stat of a dead network mount would hold the loop), one look at
// a time; then `then` on the loop, unless the watch has gone meanwhile.
void FileWatches::look_at_dir(Watch& w, void (FileWatches::*then)(Watch&, const DirState&)) {
    if (w.looking) return;
    w.looking = true;
    auto found = std::make_shared<DirState>();
    std::weak_ptr<int> alive = w.alive;
    Watch* wp = &w;
    auto queued = loop::run_in_pool(
        loop_, [dir = w.dir, found] { *found = DirState::of(dir); },
        [this, wp, alive, found, then] {
            if (alive.expired()) return;
            wp->looking = false;
            (this->*then)(*wp, *found);
        });
    if (!queued) {
        w.looking = false;
        log::error("workflow %s: %s", w.workflow.c_str(), queued.error().message.c_str());
        look_again_later(w);
    }
}

void FileWatches::arm(Watch& w) {
    look_at_dir(w, &FileWatches::armed);
}

void FileWatches::armed(Watch& w, const DirState& found) {
    if (w.dir_watch) return; // watched meanwhile
    auto dir_watch = std::make_unique<loop::DirWatch>(loop_);
    Watch* wp = &w;
    int rc = found.rc;
    if (rc == 0)
        rc = dir_watch->start(w.dir, [this, wp](const std::string& name, int) { on_event(*wp, name); });
    if (rc != 0) {
        if (!w.missing)
            log::warn("workflow %s: cannot watch %s: %s; looking for it every %llu ms", w.workflow.c_str(),
                      w.dir.c_str(), uv_strerror(rc), static_cast<unsigned long long>(kLookAgainMs));
        w.missing = true;
        return look_again_later(w);
    }
    if (w.missing) log::info("workflow %s: watching %s again", w.workflow.c_str(), w.dir.c_str());
    w.missing = false;
    w.look_again.stop();
    w.dir_watch = std::move(dir_watch);
    w.dir_ino = found.ino;
    catch_up(w);
}

void FileWatches::look_again_later(Watch& w) {
    w.dir_watch.reset();
    if (w.look_again.active()) return;
    Watch* wp = &w;
    w.look_again.start(
        kLookAgainMs, [this, wp] { arm(*wp); }, kLookAgainMs);
}

void FileWatches::on_event(Watch& w, const std::string& name) {
    if (name == w.dir_name) check_dir(w); // the directory's own event, or a file of the same name
    if (name.empty() || !matches(w.pattern, name)) return;
    auto& timer = w.quiet[name];
    if (!timer) timer = std::make_unique<loop::Timer>(loop_);
    Watch* wp = &w;
    timer->start(kQuietMs, [this, wp, name] { settle(*wp, name); });
}

// The directory's own event (or a file's of the same name): is the one watched still there?
void FileWatches::check_dir(Watch& w) {
    if (w.dir_watch) look_at_dir(w, &FileWatches::checked_dir);
}

void FileWatches::checked_dir(Watch& w, const DirState& found) {
    if (found.rc == 0 && found.ino == w.dir_ino) return;
    log::warn("workflow %s: %s was removed or moved; looking for it every %llu ms", w.workflow.c_str(),
              w.dir.c_str(), static_cast<unsigned long long>(kLookAgainMs));
    w.missing = true;
    look_again_later(w);
}

// What changed while nobody watched: each file whose state differs from the store's, new or gone, is
// handled as if it had just had an event (after the quiet period: it may still be being written).
void FileWatches::catch_up(Watch& w) {
    auto present = std::make_shared<std::map<std::string, store::FileState>>();
    std::weak_ptr<int> alive = w.alive;
    Watch* wp = &w;
    auto done = [this, wp, alive, present] {
        if (alive.expired()) return;
        Watch& watch = *wp;
        if (!store::watch_dir_known(db_, watch.workflow, watch.dir)) {
            store::WriteTx& tx = db_.write();
            store::add_watch_dir(tx, watch.workflow, watch.dir);
            for (const auto& [name, state] : *present)
                store::set_watched_file(tx, watch.workflow, watch.dir, name, state);
            log::info("workflow %s: watching %s for %s (%zu file(s) there now are the baseline)",
                      watch.workflow.c_str(), watch.dir.c_str(), watch.pattern.c_str(), present->size());
            return;
        }
        std::map<std::string, store::FileState> known = store::watched_files(db_, watch.workflow, watch.dir);
        for (const auto& [name, state] : *present)
            if (auto it = known.find(name); it == known.end() || it->second != state) on_event(watch, name);
        for (const auto& [name, state] : known)
            if (!present->count(name)) on_event(watch, name);
    };
    auto queued = loop::run_in_pool(
        loop_,
        [dir = w.dir, pattern = w.pattern, present] {
            DIR* d = ::opendir(dir.c_str());
            if (!d) return;
            while (dirent* e = ::readdir(d)) {
                std::string name = e->d_name;
                if (name == "." || name == ".." || !matches(pattern, name)) continue;
                if (auto state = file_state(dir + "/" + name)) present->emplace(name, *state);
            }
            ::closedir(d);
        },
        done);
    if (!queued) log::error("workflow %s: %s", w.workflow.c_str(), queued.error().message.c_str());
}

void FileWatches::settle(Watch& w, const std::string& name) {
    auto state = std::make_shared<std::optional<store::FileState>>();
    std::weak_ptr<int> alive = w.alive;
    Watch* wp = &w;
    auto queued = loop::run_in_pool(
        loop_, [path = w.dir + "/" + name, state] { *state = file_state(path); },
        [this, wp, alive, name, state] {
            if (alive.expired()) return;
            handle(*wp, name, *state);
        });
    if (!queued) log::error("workflow %s: %s", w.workflow.c_str(), queued.error().message.c_str());
    w.quiet.erase(name); // its timer is in its own callback: libuv frees it once closed
}

void FileWatches::handle(Watch& w, const std::string& name, std::optional<store::FileState> now) {
    if (w.quiet.count(name)) return; // written again meanwhile: its next quiet period decides
    std::optional<store::FileState> before = store::find_watched_file(db_, w.workflow, w.dir, name);
    const char* event = nullptr;
    bool wanted = false;
    if (now && !before) {
        event = "create";
        wanted = w.on_create;
    } else if (now && *now != *before) {
        event = "modify";
        wanted = w.on_modify;
    } else if (!now && before) {
        event = "delete";
        wanted = w.on_delete;
    } else {
        return; // the same as when last handled, or made and removed within one quiet period
    }
    // The file's new state and the run it starts commit together.
    store::WriteTx& tx = db_.write();
    if (now)
        store::set_watched_file(tx, w.workflow, w.dir, name, *now);
    else
        store::forget_watched_file(tx, w.workflow, w.dir, name);
    if (!wanted) return;
    std::string path = w.dir + "/" + name;
    exec::SubmitRequest r;
    r.workflow = w.workflow;
    r.input = {{"path", path}, {"event", event}};
    r.trigger = {{"type", "watch"}, {"path", path}, {"event", event}};
    auto id = executor_.submit(r);
    if (id)
        log::info("execution %s of %s started: %s (%s)", id->c_str(), w.workflow.c_str(), path.c_str(),
                  event);
    else
        log::error("workflow %s: not started for %s (%s): %s", w.workflow.c_str(), path.c_str(), event,
                   id.error().message.c_str());
}

} // namespace luaflow::triggers
