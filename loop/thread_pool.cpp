#include "loop/thread_pool.hpp"

namespace luaflow::loop {

struct PoolJob {
    uv_work_t req{};
    std::function<void()> work, done;
    // libuv's reference: the job lives until the after-work callback, whatever became of the ticket.
    std::shared_ptr<PoolJob> self;
};

void PoolTicket::cancel() {
    std::shared_ptr<PoolJob> job = job_.lock();
    if (!job) return;
    job->done = nullptr; // the loop thread owns `done`: the after-work callback runs on it too
    uv_cancel(reinterpret_cast<uv_req_t*>(&job->req));
}

Result<PoolTicket> run_in_pool(uv_loop_t* loop, std::function<void()> work, std::function<void()> done) {
    auto job = std::make_shared<PoolJob>();
    job->work = std::move(work);
    job->done = std::move(done);
    job->req.data = job.get();
    int rc = uv_queue_work(
        loop, &job->req, [](uv_work_t* req) { static_cast<PoolJob*>(req->data)->work(); },
        [](uv_work_t* req, int) {
            std::shared_ptr<PoolJob> owned = std::move(static_cast<PoolJob*>(req->data)->self);
            if (auto then = std::move(owned->done)) then();
        });
    if (rc != 0) return make_error(ErrorCode::internal, std::string("uv_queue_work: ") + uv_strerror(rc));
    job->self = job;
    return PoolTicket(job);
}

} // namespace luaflow::loop
