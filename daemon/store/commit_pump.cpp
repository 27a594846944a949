#include "daemon/store/commit_pump.hpp"

namespace luaflow::store {

namespace {
// Rounds of commit-then-act per turn: enough to carry a chain of quick Lua actions forward without
// starving I/O; what is left continues on the next turn.
constexpr int kRoundsPerTurn = 8;
} // namespace

CommitPump::CommitPump(uv_loop_t* loop, Db& db) : db_(db) {
    auto* p = new PrepareBox();
    uv_prepare_init(loop, &p->uv);
    p->pump = this;
    prepare_ = loop::UvHandle<PrepareBox>(p);
    uv_prepare_start(&p->uv, [](uv_prepare_t* h) {
        if (auto* b = loop::box_of<PrepareBox>(h)) b->pump->on_prepare();
    });
    // The prepare handle must not keep the loop alive by itself.
    uv_unref(prepare_.handle());

    auto* i = new IdleBox();
    uv_idle_init(loop, &i->uv);
    idle_ = loop::UvHandle<IdleBox>(i);
    db_.set_on_pending([this] { arm(); });
}

CommitPump::~CommitPump() {
    db_.set_on_pending(nullptr);
}

void CommitPump::arm() {
    if (!uv_is_active(idle_.handle())) uv_idle_start(&idle_->uv, [](uv_idle_t*) {});
}

void CommitPump::on_prepare() {
    bool more = db_.pending();
    for (int round = 0; more && round < kRoundsPerTurn; ++round)
        more = db_.flush();
    if (!more) uv_idle_stop(&idle_->uv);
}

} // namespace luaflow::store
