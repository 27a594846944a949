#include "daemon/store/watches.hpp"

namespace luaflow::store {

bool watch_dir_known(Db& db, const std::string& workflow, const std::string& dir) {
    static constexpr const char* kSql = "SELECT 1 FROM watch_dirs WHERE workflow = :workflow AND dir = :dir";
    Stmt::Use q(db.stmt(kSql));
    q.bind(":workflow", workflow).bind(":dir", dir);
    return q.step();
}

void add_watch_dir(WriteTx& tx, const std::string& workflow, const std::string& dir) {
    static constexpr const char* kSql =
        "INSERT OR IGNORE INTO watch_dirs(workflow, dir) VALUES (:workflow, :dir)";
    Stmt::Use q(tx.db().stmt(kSql));
    q.bind(":workflow", workflow).bind(":dir", dir).run();
}

std::optional<FileState> find_watched_file(Db& db, const std::string& workflow, const std::string& dir,
                                           const std::string& name) {
    static constexpr const char* kSql = "SELECT mtime_ns, size FROM watch_files "
                                        "WHERE workflow = :workflow AND dir = :dir AND name = :name";
    Stmt::Use q(db.stmt(kSql));
    q.bind(":workflow", workflow).bind(":dir", dir).bind(":name", name);
    if (!q.step()) return std::nullopt;
    return FileState{q.int64(0), q.int64(1)};
}

std::map<std::string, FileState> watched_files(Db& db, const std::string& workflow, const std::string& dir) {
    static constexpr const char* kSql =
        "SELECT name, mtime_ns, size FROM watch_files WHERE workflow = :workflow AND dir = :dir";
    Stmt::Use q(db.stmt(kSql));
    q.bind(":workflow", workflow).bind(":dir", dir);
    std::map<std::string, FileState> out;
    while (q.step())
        out.emplace(q.text(0), FileState{q.int64(1), q.int64(2)});
    return out;
}

void set_watched_file(WriteTx& tx, const std::string& workflow, const std::string& dir,
                      const std::string& name, const FileState& state) {
    static constexpr const char* kSql = "INSERT INTO watch_files(workflow, dir, name, mtime_ns, size) VALUES "
                                        "(:workflow, :dir, :name, :mtime, "
                                        ":size) ON CONFLICT(workflow, dir, name) DO UPDATE SET mtime_ns = "
                                        "excluded.mtime_ns, size = excluded.size";
    Stmt::Use q(tx.db().stmt(kSql));
    q.bind(":workflow", workflow).bind(":dir", dir).bind(":name", name);
    q.bind(":mtime", state.mtime_ns).bind(":size", state.size).run();
}

void forget_watched_file(WriteTx& tx, const std::string& workflow, const std::string& dir,
                         const std::string& name) {
    static constexpr const char* kSql =
        "DELETE FROM watch_files WHERE workflow = :workflow AND dir = :dir AND name = :name";
    Stmt::Use q(tx.db().stmt(kSql));
    q.bind(":workflow", workflow).bind(":dir", dir).bind(":name", name).run();
}

} // namespace luaflow::store
