#include "daemon/registry/code_cache.hpp"

namespace luaflow::registry {

CodeCache::CodeCache(uv_loop_t* loop, Build build, std::uint64_t keep_ms)
    : loop_(loop), build_(std::move(build)), keep_ms_(keep_ms), sweeper_(loop) {}

Result<std::shared_ptr<const scripting::WorkflowCode>>
CodeCache::acquire(const std::shared_ptr<const scripting::WorkflowDef>& def) {
    if (def->code) return def->code;
    std::uint64_t now = uv_now(loop_);
    auto it = entries_.find(def.get());
    if (it != entries_.end() && it->second.def.lock() == def) {
        it->second.used_ms = now;
        return it->second.code;
    }
    auto built = build_(*def);
    if (!built) return built.error();
    entries_[def.get()] = Entry{def, built.value(), now};
    if (!sweeper_.active()) {
        sweeper_.start(
            std::max<std::uint64_t>(1, keep_ms_ / 2), [this] { sweep(); },
            std::max<std::uint64_t>(1, keep_ms_ / 2));
        sweeper_.unref();
    }
    return built.value();
}

void CodeCache::sweep() {
    std::uint64_t now = uv_now(loop_);
    for (auto it = entries_.begin(); it != entries_.end();) {
        Entry& e = it->second;
        if (e.code.use_count() > 1) e.used_ms = now; // an execution holds it: in use now
        if (e.def.expired() || now - e.used_ms >= keep_ms_)
            it = entries_.erase(it);
        else
            ++it;
    }
    if (entries_.empty()) sweeper_.stop();
}

std::map<std::string, std::size_t> CodeCache::memory_by_workflow() const {
    std::map<std::string, std::size_t> out;
    for (const auto& [key, entry] : entries_) {
        auto def = entry.def.lock();
        if (def && entry.code && entry.code->lua) out[def->id] += entry.code->lua->memory_used();
    }
    return out;
}

} // namespace luaflow::registry
