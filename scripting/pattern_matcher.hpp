#pragma once
// Lua 5.1 patterns (reference manual 5.4.1, as LuaJIT 2.1 matches them), with bounded work: LuaJIT's own
// matcher runs in C where no hook reaches it, so a backtracking pattern could hold the loop for hours
// (issue 14, item 6). This one charges every step to a budget and calls check_unpaused() whenever the
// budget is spent, and caps its recursion like LuaJIT (LJ_MAX_XLEVEL) with "pattern too complex".
#include <lua.hpp>

#include <cstddef>

namespace luaflow::scripting {

class PatternMatcher {
  public:
    static constexpr int kMaxCaptures = 32; // LUA_MAXCAPTURES: "too many captures"
    static constexpr int kMaxDepth = 200;   // LuaJIT's LJ_MAX_XLEVEL: "pattern too complex"
    // Steps between two calls of check_unpaused(): a few microseconds of matching.
    static constexpr std::ptrdiff_t kStepsPerCheck = 4096;

    // subject and pattern must outlive the matcher (they are Lua strings on the caller's stack).
    // `where` names the Lua function in the budget's errors ("string.find"). Errors are Lua errors.
    PatternMatcher(lua_State* L, const char* where, const char* subject, std::size_t subject_len,
                   const char* pattern, std::size_t pattern_len);

    // Matches pattern text p.. against the subject from s; returns the end of the match or nullptr.
    // Captures of a previous attempt are dropped.
    const char* match_from(const char* s, const char* p);

    // Pushes the captures of the last successful match, or the whole match [s, e) when there are none
    // and `whole_if_none`; returns how many values it pushed.
    int push_captures(const char* s, const char* e, bool whole_if_none);
    // Pushes capture i (%0 is the whole match [s, e) when the pattern has no captures).
    void push_capture(int i, const char* s, const char* e);

    // Charges `steps` units of work; calls check_unpaused() whenever a budget of kStepsPerCheck is spent.
    void spend(std::ptrdiff_t steps) {
        budget_ -= steps;
        if (budget_ <= 0) refill();
    }

    const char* subject_end() const { return src_end_; }
    const char* pattern_end() const { return pat_end_; }

  private:
    // A capture's length while it is open, or for a position capture "()".
    static constexpr std::ptrdiff_t kUnfinished = -1;
    static constexpr std::ptrdiff_t kPosition = -2;

    struct Capture {
        const char* init;
        std::ptrdiff_t len;
    };

    const char* match(const char* s, const char* p);
    template <class Matches> const char* scan(const char* s, Matches matches);
    const char* longest_run(const char* s, const char* p, const char* ep);
    const char* max_expand(const char* s, const char* p, const char* ep);
    const char* min_expand(const char* s, const char* p, const char* ep);
    const char* start_capture(const char* s, const char* p, std::ptrdiff_t what);
    const char* end_capture(const char* s, const char* p);
    const char* match_balance(const char* s, const char* p);
    const char* match_back_reference(const char* s, char index);
    const char* class_end(const char* p) const;
    bool single_match(const char* s, const char* p, const char* ep) const;
    int capture_to_close() const;
    void refill();

    lua_State* L_;
    const char* where_;
    const char* src_init_;
    const char* src_end_;
    const char* pat_end_;
    int level_ = 0;
    int depth_ = 0;
    std::ptrdiff_t budget_ = kStepsPerCheck;
    Capture capture_[kMaxCaptures];
};

} // namespace luaflow::scripting
