#include "daemon/store/commit_pump.hpp"

namespace luaflow::store {

namespace {
// Rounds of commit-then-act per turn: enough to carry a chain of quick Lua actions forward without
// starving I/O; what is left continues on the next turn.
constexpr int kRoundsPerTurn = 8;
} // namespace

CommitPump::CommitPump(uv_loop_t* loop, Db& db) : db_(db), prepare_(loop), idle_(loop) {
    prepare_.start([this] { on_prepare(); });
    db_.set_on_pending([this] { arm(); });
}

CommitPump::~CommitPump() {
    db_.set_on_pending(nullptr);
}

void CommitPump::arm() {
    // Nothing to do in it: an active idle only keeps the next poll from blocking.
    if (!idle_.active()) idle_.start([] {});
}

void CommitPump::on_prepare() {
    bool more = db_.pending();
    for (int round = 0; more && round < kRoundsPerTurn; ++round)
        more = db_.flush();
    if (!more) idle_.stop();
}

} // namespace luaflow::store
