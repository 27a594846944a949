#include "loop/thread_pool.hpp"

#include <memory>

namespace luaflow::loop {

namespace {

struct PoolJob {
    uv_work_t req{};
    std::function<void()> work, done;
};

} // namespace

Result<void> run_in_pool(uv_loop_t* loop, std::function<void()> work, std::function<void()> done) {
    auto job = std::make_unique<PoolJob>();
    job->work = std::move(work);
    job->done = std::move(done);
    job->req.data = job.get();
    int rc = uv_queue_work(
        loop, &job->req, [](uv_work_t* req) { static_cast<PoolJob*>(req->data)->work(); },
        [](uv_work_t* req, int) {
            std::unique_ptr<PoolJob> owned(static_cast<PoolJob*>(req->data));
            if (owned->done) owned->done();
        });
    if (rc != 0) return make_error(ErrorCode::internal, std::string("uv_queue_work: ") + uv_strerror(rc));
    job.release(); // libuv holds it until the after-work callback
    return {};
}

} // namespace luaflow::loop
