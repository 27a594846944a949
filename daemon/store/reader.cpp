#include "daemon/store/reader.hpp"

#include "daemon/store/db.hpp"
#include "loop/thread_pool.hpp"

#include <malloc.h>
#include <mutex>

namespace luaflow::store {

// What the jobs share; a job may outlive the Reader (at shutdown).
struct Reader::Shared {
    std::string path;
    std::mutex mutex; // one job at a time on the connection
    std::unique_ptr<Db> db;
};

Reader::Reader(uv_loop_t* loop, std::string path) : loop_(loop), shared_(std::make_shared<Shared>()) {
    shared_->path = std::move(path);
}

Reader::~Reader() = default;

void Reader::run(Read read, std::function<void(Result<std::string>)> done) {
    auto out = std::make_shared<Result<std::string>>(std::string());
    auto queued = loop::run_in_pool(
        loop_,
        [s = shared_, read = std::move(read), out] {
            std::lock_guard lock(s->mutex);
            if (!s->db) {
                auto db = Db::open_reader(s->path);
                if (!db) return void(*out = db.error());
                s->db = std::move(db.value());
            }
            if (auto began = s->db->begin_read(); !began) return void(*out = began.error());
            *out = read(*s->db);
            s->db->end_read();
            // What the read built is freed in this thread's malloc arena, which glibc does not shrink by
            // itself: a 10 000-action document left 70 MiB resident for good.
            ::malloc_trim(0);
        },
        [out, done = std::move(done)] { done(std::move(*out)); });
    if (!queued) done(queued.error());
}

} // namespace luaflow::store
