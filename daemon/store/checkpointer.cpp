#include "daemon/store/checkpointer.hpp"

#include "common/log.hpp"
#include "daemon/store/db.hpp"
#include "loop/thread_pool.hpp"

namespace luaflow::store {

// What the job and the loop share: the job may outlive the Checkpointer (at shutdown).
struct Checkpointer::Shared {
    std::string path;
    sqlite3* conn = nullptr; // used by one pool job at a time, never by the loop thread
    bool running = false;
    bool owner_gone = false;
    int result = SQLITE_OK;
    std::string error;
};

Checkpointer::Checkpointer(uv_loop_t* loop, Db& db, std::string path)
    : loop_(loop), db_(db), shared_(std::make_shared<Shared>()) {
    shared_->path = std::move(path);
    sqlite3_wal_hook(db_.handle(), &Checkpointer::on_wal, this);
}

Checkpointer::~Checkpointer() {
    sqlite3_wal_hook(db_.handle(), nullptr, nullptr);
    shared_->owner_gone = true;
    if (!shared_->running && shared_->conn) {
        sqlite3_close_v2(shared_->conn);
        shared_->conn = nullptr;
    }
}

int Checkpointer::on_wal(void* self, sqlite3*, const char*, int pages) {
    // Called inside COMMIT on the loop thread: only decide, do nothing slow here.
    if (pages >= kPagesBeforeCheckpoint) static_cast<Checkpointer*>(self)->start_job();
    return SQLITE_OK;
}

void Checkpointer::start_job() {
    if (shared_->running) return;
    shared_->running = true;
    // The job holds the Shared: it may finish after the Checkpointer is gone (at shutdown).
    std::shared_ptr<Shared> s = shared_;
    auto queued = loop::run_in_pool(
        loop_,
        [s] {
            if (!s->conn &&
                sqlite3_open_v2(s->path.c_str(), &s->conn, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                                nullptr) != SQLITE_OK) {
                s->result = SQLITE_CANTOPEN;
                s->error = s->conn ? sqlite3_errmsg(s->conn) : "cannot open";
                sqlite3_close_v2(s->conn);
                s->conn = nullptr;
                return;
            }
            // A connection learns the file is in WAL mode only once it reads it; until then a checkpoint
            // is a silent no-op (sqlite3_wal_checkpoint_v2 on a database not in WAL mode: SQLITE_OK).
            sqlite3_exec(s->conn, "SELECT count(*) FROM sqlite_schema", nullptr, nullptr, nullptr);
            s->result =
                sqlite3_wal_checkpoint_v2(s->conn, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
            if (s->result != SQLITE_OK) s->error = sqlite3_errmsg(s->conn);
        },
        [s] {
            s->running = false;
            if (s->result != SQLITE_OK && s->result != SQLITE_BUSY)
                log::warn("WAL checkpoint of %s failed: %s", s->path.c_str(), s->error.c_str());
            if (s->owner_gone && s->conn) {
                sqlite3_close_v2(s->conn);
                s->conn = nullptr;
            }
        });
    if (!queued) shared_->running = false;
}

} // namespace luaflow::store
