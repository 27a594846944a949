#include "daemon/exec/lua_runner.hpp"

#include "loop/uv_handle.hpp"
#include "scripting/convert.hpp"
#include "scripting/lazy_outputs.hpp"

namespace luaflow::exec {

using scripting::LuaRef;
using scripting::protected_call;
using scripting::TaskOutcome;

const FrozenJson& frozen_null() {
    static const FrozenJson null = freeze(json());
    return null;
}

const FrozenJson& frozen_object() {
    static const FrozenJson object = freeze(json::object());
    return object;
}

json execution_json(const AttemptSpec& spec) {
    return {{"id", spec.execution},
            {"workflow", spec.def->id},
            {"trigger", *spec.trigger},
            {"attempt", spec.attempt},
            {"scheduled_for", spec.scheduled_for
                                  ? json(tz::format_scheduled(*spec.scheduled_for, spec.scheduled_tz))
                                  : json()}};
}

namespace {

// One call of a Lua function with a fresh ctx, bounded by the attempt's timeout.
class LuaCall final : public Attempt {
  public:
    enum class Mode { body, when, argv };
    using Finished = std::function<void(AttemptResult, bool truthy)>;

    LuaCall(scripting::RunQueue& scheduler, AttemptSpec spec, Mode mode, Finished finished)
        : scheduler_(scheduler), spec_(std::move(spec)), mode_(mode), finished_(std::move(finished)) {}

    // Its turn on the run queue: the ctx and the coroutine are made then (RunQueue::defer).
    void start() override {
        scheduler_.defer([this, alive = std::weak_ptr<int>(alive_)] {
            if (!alive.expired() && !done_) begin();
        });
    }

    // Runs when its turn on the run queue comes, before the call.
    void on_begin(std::function<void()> fn) { on_begin_ = std::move(fn); }

    void begin() {
        if (on_begin_) std::exchange(on_begin_, nullptr)();
        const scripting::ActionDef& action = spec_.def->actions[spec_.action];
        scripting::LuaState& state = *spec_.code->lua;
        auto ctx = build_ctx(state);
        if (!ctx) {
            report(failure(AttemptResult::Kind::resource, ctx.error().message), false);
            return;
        }
        ctx_ = std::move(ctx.value());
        // ctx holds them now; a call waits for long, and thousands may wait at once.
        spec_.input = frozen_null();
        spec_.outputs.reset();
        spec_.node = json();
        spec_.trigger = frozen_null();
        std::uint64_t deadline = 0;
        if (spec_.timeout) {
            deadline = uv_hrtime() + static_cast<std::uint64_t>(*spec_.timeout) * 1'000'000;
            timer_ = std::make_unique<loop::Timer>(scheduler_.loop());
            timer_->start(static_cast<std::uint64_t>(*spec_.timeout), [this] { on_timeout(); });
        }
        scripting::TaskLabel label{spec_.def->id, spec_.execution, action.name, spec_.attempt, spec_.scratch};
        task_ = std::make_unique<scripting::Task>(
            spec_.code->lua, scheduler_, label,
            [this](scripting::Task& t, const TaskOutcome& outcome) { on_task_done(t, outcome); });
        const scripting::ActionCode& code = spec_.code->actions[spec_.action];
        const LuaRef& fn = mode_ == Mode::when ? code.when : mode_ == Mode::argv ? code.argv_fn : code.fn;
        if (auto started = task_->start(fn, ctx_, deadline); !started) {
            report(failure(AttemptResult::Kind::resource, started.error().message), false);
        }
    }

    void cancel() override {
        done_ = true;
        if (task_) task_->cancel();
        if (timer_) timer_->stop();
    }

  private:
    Result<LuaRef> build_ctx(scripting::LuaState& state) {
        LuaRef ctx;
        auto r = protected_call(state.L(), [&](lua_State* L) {
            lua_createtable(L, 0, 8);
            scripting::push_json(L, spec_.input->is_null() ? *frozen_object() : *spec_.input);
            lua_setfield(L, -2, "input");
            scripting::push_lazy_outputs(L, spec_.outputs, spec_.outputs_seen);
            lua_setfield(L, -2, "outputs");
            scripting::push_json(L, *spec_.shared);
            lua_setfield(L, -2, "shared");
            scripting::push_json(L, spec_.node);
            lua_setfield(L, -2, "node");
            scripting::push_json(L, spec_.def->actions[spec_.action].config);
            lua_setfield(L, -2, "config");
            push_execution(L);
            lua_setfield(L, -2, "execution");
            lua_pushlstring(L, spec_.scratch.data(), spec_.scratch.size());
            lua_setfield(L, -2, "scratch");
            ctx = LuaRef::pop(L);
        });
        if (!r) return r.error();
        return ctx;
    }

    // ctx.execution: what execution_json() holds, made in Lua directly (a JSON object first cost 5 % of
    // the loop's time with pipelined 3-action runs).
    void push_execution(lua_State* L) const {
        lua_createtable(L, 0, 5);
        lua_pushlstring(L, spec_.execution.data(), spec_.execution.size());
        lua_setfield(L, -2, "id");
        lua_pushlstring(L, spec_.def->id.data(), spec_.def->id.size());
        lua_setfield(L, -2, "workflow");
        scripting::push_json(L, *spec_.trigger);
        lua_setfield(L, -2, "trigger");
        lua_pushinteger(L, spec_.attempt);
        lua_setfield(L, -2, "attempt");
        if (spec_.scheduled_for) {
            std::string at = tz::format_scheduled(*spec_.scheduled_for, spec_.scheduled_tz);
            lua_pushlstring(L, at.data(), at.size());
            lua_setfield(L, -2, "scheduled_for");
        }
    }

    static AttemptResult failure(AttemptResult::Kind kind, std::string error) {
        AttemptResult r;
        r.kind = kind;
        r.error = std::move(error);
        return r;
    }

    // ctx.node as JSON, or nothing when it cannot be read (then the stored node stays).
    std::optional<json> read_node(lua_State* L) {
        std::optional<json> node;
        (void)protected_call(L, [&](lua_State* S) {
            ctx_.push(S);
            // Raw: a metatable the action set on ctx must not run its code inside the daemon's call.
            lua_pushliteral(S, "node");
            lua_rawget(S, -2);
            if (lua_istable(S, -1)) {
                auto j = scripting::to_json(S, -1, "ctx.node");
                if (j && (j->is_object() || (j->is_array() && j->empty())))
                    node = j->is_array() ? json::object() : *j;
            }
            lua_pop(S, 2);
        });
        return node;
    }

    void on_timeout() {
        if (done_) return;
        // The coroutine is waiting (a running one is stopped by the hook): drop it.
        task_->cancel();
        AttemptResult r =
            failure(AttemptResult::Kind::timed_out, "timed out after " + format_duration(*spec_.timeout));
        r.node = read_node(spec_.code->lua->L());
        report(std::move(r), false);
    }

    void on_task_done(scripting::Task& task, const TaskOutcome& outcome) {
        lua_State* L = spec_.code->lua->L();
        AttemptResult r;
        bool truthy = false;
        switch (outcome.kind) {
        case TaskOutcome::Kind::returned: {
            auto converted = protected_call(L, [&](lua_State* S) {
                lua_State* co = task.results_thread();
                int n = lua_gettop(co);
                if (mode_ == Mode::when) {
                    truthy = n > 0 && lua_toboolean(co, 1);
                    return;
                }
                lua_checkstack(S, n + 4);
                if (n > 0) {
                    lua_xmove(co, S, n);
                    auto out = scripting::to_json(S, -n, "output");
                    lua_pop(S, n);
                    if (!out) throw_lua(S, out.error().message);
                    r.output = std::move(out.value());
                }
                if (mode_ == Mode::argv) return; // a cmd template: ctx is read, never kept
                ctx_.push(S);
                lua_pushliteral(S, "shared");
                lua_rawget(S, -2);
                if (!lua_istable(S, -1)) throw_lua(S, "ctx.shared must stay a table");
                auto shared = scripting::to_json(S, -1, "ctx.shared");
                lua_pop(S, 2);
                if (!shared) throw_lua(S, shared.error().message);
                r.shared_changes = diff_shared(*shared);
            });
            if (!converted) {
                r = failure(AttemptResult::Kind::failed, converted.error().message);
            }
            break;
        }
        case TaskOutcome::Kind::error:
            r = failure(AttemptResult::Kind::failed, outcome.message);
            break;
        case TaskOutcome::Kind::timed_out:
            // The hook's message is the state's; the timeout is this attempt's.
            r = failure(AttemptResult::Kind::timed_out,
                        "timed out after " + format_duration(spec_.timeout.value_or(0)));
            break;
        case TaskOutcome::Kind::memory:
            r = failure(AttemptResult::Kind::resource, outcome.message);
            break;
        }
        r.node = read_node(L);
        report(std::move(r), truthy);
    }

    [[noreturn]] static void throw_lua(lua_State* L, const std::string& msg) {
        lua_pushlstring(L, msg.data(), msg.size());
        lua_error(L);
        __builtin_unreachable();
    }

    json diff_shared(const json& now) const {
        json changes = json::object();
        const json& before = *spec_.shared;
        // An empty Lua table converts to [], which here means {}; no copy of the whole table otherwise.
        const json& current = now.is_array() && now.empty() ? *frozen_object() : now;
        if (current.is_object()) {
            for (auto it = current.begin(); it != current.end(); ++it) {
                auto old = before.find(it.key());
                if (old == before.end() || *old != it.value()) changes[it.key()] = it.value();
            }
        }
        for (auto it = before.begin(); it != before.end(); ++it) {
            if (!current.is_object() || !current.contains(it.key())) changes[it.key()] = nullptr;
        }
        return changes;
    }

    void report(AttemptResult r, bool truthy) {
        if (done_) return;
        done_ = true;
        if (timer_) timer_->stop();
        // The callback may destroy this call: nothing touches `this` afterwards.
        Finished f = std::move(finished_);
        f(std::move(r), truthy);
    }

    scripting::RunQueue& scheduler_;
    AttemptSpec spec_;
    Mode mode_;
    Finished finished_;
    LuaRef ctx_;
    std::unique_ptr<loop::Timer> timer_;
    std::unique_ptr<scripting::Task> task_;
    bool done_ = false;
    std::function<void()> on_begin_;
    std::shared_ptr<int> alive_ = std::make_shared<int>(0); // a deferred start finds it gone
};

} // namespace

std::unique_ptr<Attempt> LuaRunner::run(AttemptSpec spec, AttemptDone done, std::function<void()> begun) {
    auto call =
        std::make_unique<LuaCall>(scheduler_, std::move(spec), LuaCall::Mode::body,
                                  [done = std::move(done)](AttemptResult r, bool) { done(std::move(r)); });
    call->on_begin(std::move(begun));
    return call;
}

std::unique_ptr<Attempt> LuaRunner::expand_argv(AttemptSpec spec, AttemptDone done) {
    return std::make_unique<LuaCall>(scheduler_, std::move(spec), LuaCall::Mode::argv,
                                     [done = std::move(done)](AttemptResult r, bool) { done(std::move(r)); });
}

std::unique_ptr<Attempt> LuaRunner::check_when(AttemptSpec spec, WhenDone done) {
    auto call = std::make_unique<LuaCall>(scheduler_, std::move(spec), LuaCall::Mode::when,
                                          [done = std::move(done)](AttemptResult r, bool truthy) {
                                              if (r.kind == AttemptResult::Kind::succeeded)
                                                  done(truthy, {});
                                              else
                                                  done(std::nullopt, std::move(r));
                                          });
    return call;
}

} // namespace luaflow::exec
