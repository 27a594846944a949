#pragma once
// The Lua states of the workflows in use. A loaded definition keeps no state (a sandbox with its
// libraries is ~40 KB, and most workflows are idle most of the time); the first execution that runs
// Lua evaluates the definition's text again into a new one, which serves every execution of that
// definition until none has used it for `keep_ms`.
#include "common/result.hpp"
#include "loop/uv_handle.hpp"
#include "scripting/workflow_def.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>

namespace luaflow::registry {

class CodeCache {
  public:
    using Build =
        std::function<Result<std::shared_ptr<const scripting::WorkflowCode>>(const scripting::WorkflowDef&)>;
    static constexpr std::uint64_t kDefaultKeepMs = 60'000;

    CodeCache(uv_loop_t* loop, Build build, std::uint64_t keep_ms = kDefaultKeepMs);

    // The definition's code: its own when it has one, the cached one, or a new one from `build`.
    Result<std::shared_ptr<const scripting::WorkflowCode>>
    acquire(const std::shared_ptr<const scripting::WorkflowDef>& def);

    // Drops the codes no execution holds that have not been used for keep_ms, and those whose
    // definition is gone. Runs by itself every keep_ms / 2 while any code is kept.
    void sweep();
    std::size_t size() const { return entries_.size(); }
    // The memory the kept Lua states use, by workflow (two versions of one in use add up).
    std::map<std::string, std::size_t> memory_by_workflow() const;

  private:
    struct Entry {
        std::weak_ptr<const scripting::WorkflowDef> def; // tells a reused address from the same definition
        std::shared_ptr<const scripting::WorkflowCode> code;
        std::uint64_t used_ms = 0; // loop time it was last handed out or seen held
    };

    uv_loop_t* loop_;
    Build build_;
    std::uint64_t keep_ms_;
    std::map<const scripting::WorkflowDef*, Entry> entries_;
    loop::Timer sweeper_;
};

} // namespace luaflow::registry
