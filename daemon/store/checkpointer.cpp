#include "daemon/store/checkpointer.hpp"

#include "common/log.hpp"
#include "daemon/store/db.hpp"
#include "loop/thread_pool.hpp"

#include <algorithm>

namespace luaflow::store {

// What the job and the loop share: the job may outlive the Checkpointer (at shutdown).
struct Checkpointer::Shared {
    std::string path;
    sqlite3* conn = nullptr; // used by one pool job at a time, never by the loop thread
    bool running = false;
    Checkpointer* owner = nullptr; // null once it is gone
    int result = SQLITE_OK;
    int wal_frames = 0;    // frames in the WAL when the checkpoint ran
    int copied_frames = 0; // of them, in the database now
    std::string error;
};

Checkpointer::Checkpointer(uv_loop_t* loop, Db& db, std::string path, std::uint64_t first_hold_ms,
                           int pages_before_checkpoint)
    : loop_(loop), db_(db), shared_(std::make_shared<Shared>()), hold_limit_(loop),
      first_hold_ms_(first_hold_ms), pages_before_checkpoint_(pages_before_checkpoint),
      hold_ms_(first_hold_ms) {
    shared_->path = std::move(path);
    shared_->owner = this;
    sqlite3_wal_hook(db_.handle(), &Checkpointer::on_wal, this);
}

Checkpointer::~Checkpointer() {
    sqlite3_wal_hook(db_.handle(), nullptr, nullptr);
    release();
    shared_->owner = nullptr;
    if (!shared_->running && shared_->conn) {
        sqlite3_close_v2(shared_->conn);
        shared_->conn = nullptr;
    }
}

bool Checkpointer::busy() const {
    return shared_->running || holding_;
}

int Checkpointer::on_wal(void* self, sqlite3*, const char*, int pages) {
    // Called inside COMMIT on the loop thread: only decide, do nothing slow here.
    auto* checkpointer = static_cast<Checkpointer*>(self);
    if (pages >= checkpointer->pages_before_checkpoint_) checkpointer->start_job(Phase::bulk);
    return SQLITE_OK;
}

void Checkpointer::start_job(Phase phase) {
    if (shared_->running) return;
    shared_->running = true;
    // The job holds the Shared: it may finish after the Checkpointer is gone (at shutdown).
    std::shared_ptr<Shared> s = shared_;
    auto queued = loop::run_in_pool(
        loop_,
        [s] {
            s->wal_frames = s->copied_frames = 0;
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
            s->result = sqlite3_wal_checkpoint_v2(s->conn, nullptr, SQLITE_CHECKPOINT_PASSIVE, &s->wal_frames,
                                                  &s->copied_frames);
            if (s->result != SQLITE_OK) s->error = sqlite3_errmsg(s->conn);
        },
        [s, phase] {
            s->running = false;
            if (s->result != SQLITE_OK && s->result != SQLITE_BUSY)
                log::warn("WAL checkpoint of %s failed: %s", s->path.c_str(), s->error.c_str());
            if (!s->owner) {
                if (s->conn) sqlite3_close_v2(s->conn);
                s->conn = nullptr;
                return;
            }
            s->owner->on_job_done(phase, s->result, s->wal_frames, s->copied_frames);
        });
    if (!queued) {
        shared_->running = false;
        if (phase == Phase::catch_up) release();
    }
}

void Checkpointer::on_job_done(Phase phase, int result, int wal_frames, int copied_frames) {
    if (phase == Phase::bulk) {
        if (result != SQLITE_OK) return;
        // What was committed while the bulk ran is copied with commits held: then nothing is left.
        holding_ = true;
        db_.hold_commits(true);
        hold_limit_.start(hold_ms_, [this] {
            ++gave_up_;
            hold_ms_ = std::min(2 * hold_ms_, std::max(kMaxHoldMs, first_hold_ms_));
            release();
        });
        hold_limit_.unref();
        start_job(Phase::catch_up);
        return;
    }
    if (!holding_) return; // held too long: commits went on, the WAL grew meanwhile
    if (result == SQLITE_OK && wal_frames > 0 && copied_frames == wal_frames) {
        db_.begin_again();
        ++restarts_;
        hold_ms_ = first_hold_ms_;
    }
    release();
}

void Checkpointer::release() {
    hold_limit_.stop();
    if (!holding_) return;
    holding_ = false;
    db_.hold_commits(false);
}

} // namespace luaflow::store
