#pragma once
// Starts workflows on file events (SPEC 4: `triggers.watch = { path=, pattern=, events= }`). Each
// watching workflow has an inotify watch on its directory (uv_fs_event, the loop's one inotify
// descriptor); an event for a file whose name matches the pattern (fnmatch, a leading dot matched only by
// a dot) waits until the file has been quiet for 500 ms, then the file is compared with what the store
// says it was when last handled: new is "create", changed (mtime or size) is "modify", gone is "delete".
// One execution per file and quiet period, with `ctx.input = { path=, event= }`, written in the
// transaction that records the file's new state: nothing runs twice, across restarts too.
//
// Files already in the directory when a workflow's watch of it first begins are its baseline and start
// nothing (as n8n's and chokidar's `ignoreInitial`); after that, what changed while the daemon was down
// (or the directory was missing) is found by comparing the directory with the store when the watch
// begins again, and handled as above. A missing directory is looked for every second; a removed or
// moved one is watched again once it is back.
#include "daemon/exec/submit.hpp"
#include "daemon/registry/registry.hpp"
#include "daemon/store/db.hpp"
#include "daemon/store/watches.hpp"
#include "loop/uv_handle.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace luaflow::triggers {

inline constexpr std::uint64_t kQuietMs = 500;      // SPEC 4: debounced until the file is quiet this long
inline constexpr std::uint64_t kLookAgainMs = 1000; // a missing watched directory is looked for this often

class FileWatches {
  public:
    FileWatches(uv_loop_t* loop, store::Db& db, registry::Registry& registry, exec::Submitter& executor);
    FileWatches(const FileWatches&) = delete;
    FileWatches& operator=(const FileWatches&) = delete;
    ~FileWatches();

    // Watches for every loaded workflow with a watch trigger.
    void start();
    // The workflow's definition changed or went away: its watch follows.
    void refresh(const std::string& workflow);
    // Watches nothing more (shutdown).
    void stop();

  private:
    struct Watch;
    struct DirState;
    void look_at_dir(Watch& w, void (FileWatches::*then)(Watch&, const DirState&));
    void arm(Watch& w);
    void armed(Watch& w, const DirState& found);
    void look_again_later(Watch& w);
    void on_event(Watch& w, const std::string& name);
    void check_dir(Watch& w);
    void checked_dir(Watch& w, const DirState& found);
    void catch_up(Watch& w);
    void settle(Watch& w, const std::string& name);
    void handle(Watch& w, const std::string& name, std::optional<store::FileState> now);

    uv_loop_t* loop_;
    store::Db& db_;
    registry::Registry& registry_;
    exec::Submitter& executor_;
    std::map<std::string, std::unique_ptr<Watch>> watches_; // by workflow
    bool stopped_ = false;
};

} // namespace luaflow::triggers
