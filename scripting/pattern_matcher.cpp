#include "scripting/pattern_matcher.hpp"

#include "scripting/lua_state.hpp"

#include <array>
#include <cstdint>
#include <cstring>
#include <utility>

namespace luaflow::scripting {

namespace {

// Character classes, ASCII only and independent of the locale, as LuaJIT's lj_char table has them:
// bytes 128-255 belong to no class. kNul is %z's class (Lua 5.1).
enum : unsigned char {
    kCntrl = 1,
    kSpace = 2,
    kPunct = 4,
    kDigit = 8,
    kXdigit = 16,
    kUpper = 32,
    kLower = 64,
    kNul = 128,
    kAlpha = kUpper | kLower,
    kAlnum = kAlpha | kDigit,
    kGraph = kPunct | kAlnum,
};

constexpr std::array<unsigned char, 256> make_char_classes() {
    std::array<unsigned char, 256> t{};
    for (int c = 0; c < 128; ++c) {
        unsigned char bits = 0;
        if (c == 0) bits |= kNul;
        if (c < 32 || c == 127) bits |= kCntrl;
        if ((c >= '\t' && c <= '\r') || c == ' ') bits |= kSpace;
        if (c >= '0' && c <= '9') bits |= kDigit | kXdigit;
        if ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) bits |= kXdigit;
        if (c >= 'A' && c <= 'Z') bits |= kUpper;
        if (c >= 'a' && c <= 'z') bits |= kLower;
        if (c > 32 && c < 127 && !(bits & kAlnum)) bits |= kPunct;
        t[static_cast<std::size_t>(c)] = bits;
    }
    return t;
}

// What `%` + a letter names: the class bits, with kComplement for an upper-case letter; 0 for any other
// character, which then stands for itself (`%.` is a dot). %g (printable, not space) is LuaJIT's too.
constexpr std::uint16_t kComplement = 0x100;

constexpr std::array<std::uint16_t, 256> make_class_letters() {
    std::array<std::uint16_t, 256> t{};
    const std::pair<char, unsigned char> letters[] = {
        {'a', kAlpha}, {'c', kCntrl}, {'d', kDigit}, {'g', kGraph},  {'l', kLower}, {'p', kPunct},
        {'s', kSpace}, {'u', kUpper}, {'w', kAlnum}, {'x', kXdigit}, {'z', kNul}};
    for (auto [letter, bits] : letters) {
        t[static_cast<unsigned char>(letter)] = bits;
        t[static_cast<unsigned char>(letter - 'a' + 'A')] = bits | kComplement;
    }
    return t;
}

constexpr std::array<unsigned char, 256> kCharClasses = make_char_classes();
constexpr std::array<std::uint16_t, 256> kClassLetters = make_class_letters();

unsigned char uchar(char c) {
    return static_cast<unsigned char>(c);
}

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

// Does byte c match `%` + cl?
inline bool match_class(unsigned char c, unsigned char cl) {
    std::uint16_t named = kClassLetters[cl];
    if (!named) return cl == c;
    bool in = (kCharClasses[c] & named) != 0;
    return (named & kComplement) ? !in : in;
}

// Does c match the set [...] that starts at p ('[') and ends at ec (its ']')?
bool match_bracket_class(unsigned char c, const char* p, const char* ec) {
    bool found = true;
    if (p[1] == '^') {
        found = false;
        ++p;
    }
    while (++p < ec) {
        if (*p == '%') {
            ++p;
            if (match_class(c, uchar(*p))) return found;
        } else if (p[1] == '-' && p + 2 < ec) {
            p += 2;
            if (uchar(p[-2]) <= c && c <= uchar(*p)) return found;
        } else if (uchar(*p) == c) {
            return found;
        }
    }
    return !found;
}

} // namespace

PatternMatcher::PatternMatcher(lua_State* L, const char* where, const char* subject, std::size_t subject_len,
                               const char* pattern, std::size_t pattern_len)
    : L_(L), where_(where), src_init_(subject), src_end_(subject + subject_len),
      pat_end_(pattern + pattern_len) {}

void PatternMatcher::refill() {
    budget_ = kStepsPerCheck;
    check_unpaused(L_, where_);
}

const char* PatternMatcher::match_from(const char* s, const char* p) {
    level_ = 0;
    depth_ = 0;
    return match(s, p);
}

// Where the single-character item at p ends: past `%x`, past a set `[...]`, or past one character.
const char* PatternMatcher::class_end(const char* p) const {
    char c = *p++;
    if (c == '%') {
        if (p >= pat_end_) luaL_error(L_, "malformed pattern (ends with '%%')");
        return p + 1;
    }
    if (c == '[') {
        if (p < pat_end_ && *p == '^') ++p;
        // The first character of a set is never its end: "[]]" and "[^]]" hold a ']'.
        do {
            if (p >= pat_end_) luaL_error(L_, "malformed pattern (missing ']')");
            if (*p++ == '%' && p < pat_end_) ++p;
        } while (p >= pat_end_ || *p != ']');
        return p + 1;
    }
    return p;
}

inline bool PatternMatcher::single_match(const char* s, const char* p, const char* ep) const {
    unsigned char c = uchar(*s);
    switch (*p) {
    case '.':
        return true;
    case '%':
        return match_class(c, uchar(p[1]));
    case '[':
        return match_bracket_class(c, p, ep - 1);
    default:
        return uchar(*p) == c;
    }
}

int PatternMatcher::capture_to_close() const {
    for (int level = level_ - 1; level >= 0; --level)
        if (capture_[level].len == kUnfinished) return level;
    luaL_error(L_, "invalid pattern capture");
    return 0;
}

const char* PatternMatcher::match_balance(const char* s, const char* p) {
    if (p + 1 >= pat_end_) luaL_error(L_, "unbalanced pattern");
    if (s >= src_end_ || *s != *p) return nullptr;
    char open = p[0];
    char close = p[1];
    int depth = 1;
    while (++s < src_end_) {
        spend(1);
        if (*s == close) {
            if (--depth == 0) return s + 1;
        } else if (*s == open) {
            ++depth;
        }
    }
    return nullptr;
}

const char* PatternMatcher::match_back_reference(const char* s, char index) {
    int l = index - '1';
    if (l < 0 || l >= level_ || capture_[l].len == kUnfinished) luaL_error(L_, "invalid capture index");
    std::ptrdiff_t len = capture_[l].len;
    // A position capture has no text: it matches nothing (as in Lua 5.1, where its length is huge).
    if (len < 0 || src_end_ - s < len) return nullptr;
    spend(1 + len / 64);
    return std::memcmp(capture_[l].init, s, static_cast<std::size_t>(len)) == 0 ? s + len : nullptr;
}

template <class Matches> const char* PatternMatcher::scan(const char* s, Matches matches) {
    // In runs of at most kStepsPerCheck characters, so that even a scan of a long subject is charged as
    // it goes.
    while (s < src_end_) {
        const char* limit = src_end_ - s > kStepsPerCheck ? s + kStepsPerCheck : src_end_;
        const char* from = s;
        while (s < limit && matches(uchar(*s)))
            ++s;
        spend(s - from);
        if (s < limit) break;
    }
    return s;
}

// How far from s the single-character item [p, ep) matches, character after character: the item's kind
// is decided once, not at every character.
const char* PatternMatcher::longest_run(const char* s, const char* p, const char* ep) {
    switch (*p) {
    case '.':
        return src_end_;
    case '%':
        if (std::uint16_t named = kClassLetters[uchar(p[1])]) {
            if (named & kComplement)
                return scan(s, [named](unsigned char c) { return (kCharClasses[c] & named) == 0; });
            return scan(s, [named](unsigned char c) { return (kCharClasses[c] & named) != 0; });
        }
        return scan(s, [literal = uchar(p[1])](unsigned char c) { return c == literal; });
    case '[':
        return scan(s, [p, ep](unsigned char c) { return match_bracket_class(c, p, ep - 1); });
    default:
        return scan(s, [literal = uchar(*p)](unsigned char c) { return c == literal; });
    }
}

const char* PatternMatcher::max_expand(const char* s, const char* p, const char* ep) {
    // The longest run first, then one repetition fewer at a time.
    for (std::ptrdiff_t i = longest_run(s, p, ep) - s; i >= 0; --i)
        if (const char* res = match(s + i, ep + 1)) return res;
    return nullptr;
}

const char* PatternMatcher::min_expand(const char* s, const char* p, const char* ep) {
    for (;;) {
        if (const char* res = match(s, ep + 1)) return res;
        if (s < src_end_ && single_match(s, p, ep))
            ++s;
        else
            return nullptr;
    }
}

const char* PatternMatcher::start_capture(const char* s, const char* p, std::ptrdiff_t what) {
    int level = level_;
    if (level >= kMaxCaptures) luaL_error(L_, "too many captures");
    capture_[level].init = s;
    capture_[level].len = what;
    level_ = level + 1;
    const char* res = match(s, p);
    if (!res) --level_;
    return res;
}

const char* PatternMatcher::end_capture(const char* s, const char* p) {
    int l = capture_to_close();
    capture_[l].len = s - capture_[l].init;
    const char* res = match(s, p);
    if (!res) capture_[l].len = kUnfinished;
    return res;
}

// Matches from s with the pattern from p. Items without a quantifier continue in the loop (what would be
// tail calls); the others recurse, at most kMaxDepth deep.
const char* PatternMatcher::match(const char* s, const char* p) {
    if (++depth_ > kMaxDepth) luaL_error(L_, "pattern too complex");
    spend(1);
    while (p < pat_end_) {
        switch (*p) {
        case '(':
            if (p + 1 < pat_end_ && p[1] == ')')
                s = start_capture(s, p + 2, kPosition);
            else
                s = start_capture(s, p + 1, kUnfinished);
            --depth_;
            return s;
        case ')':
            s = end_capture(s, p + 1);
            --depth_;
            return s;
        case '$':
            if (p + 1 == pat_end_) { // only a '$' that ends the pattern is an anchor
                --depth_;
                return s == src_end_ ? s : nullptr;
            }
            break;
        case '%':
            if (p + 1 == pat_end_) break; // class_end reports it
            if (p[1] == 'b') {
                s = match_balance(s, p + 2);
                if (!s) {
                    --depth_;
                    return nullptr;
                }
                p += 4;
                continue;
            }
            if (p[1] == 'f') {
                p += 2;
                if (p >= pat_end_ || *p != '[') luaL_error(L_, "missing '[' after '%%f' in pattern");
                const char* ep = class_end(p);
                unsigned char previous = s == src_init_ ? 0 : uchar(s[-1]);
                unsigned char current = s < src_end_ ? uchar(*s) : 0;
                if (match_bracket_class(previous, p, ep - 1) || !match_bracket_class(current, p, ep - 1)) {
                    --depth_;
                    return nullptr;
                }
                p = ep;
                continue;
            }
            if (is_digit(p[1])) {
                s = match_back_reference(s, p[1]);
                if (!s) {
                    --depth_;
                    return nullptr;
                }
                p += 2;
                continue;
            }
            break;
        default:
            break;
        }
        // A single-character item, with its quantifier if it has one.
        const char* ep = class_end(p);
        bool matched = s < src_end_ && single_match(s, p, ep);
        // A NUL in the pattern is a character like any other; past the end there is no quantifier.
        char quantifier = ep < pat_end_ ? *ep : '\0';
        switch (quantifier) {
        case '?':
            if (const char* res = matched ? match(s + 1, ep + 1) : nullptr) {
                --depth_;
                return res;
            }
            p = ep + 1;
            continue;
        case '*':
            s = max_expand(s, p, ep);
            --depth_;
            return s;
        case '+':
            s = matched ? max_expand(s + 1, p, ep) : nullptr;
            --depth_;
            return s;
        case '-':
            s = min_expand(s, p, ep);
            --depth_;
            return s;
        default:
            if (!matched) {
                --depth_;
                return nullptr;
            }
            ++s;
            p = ep;
            continue;
        }
    }
    --depth_;
    return s; // the end of the pattern: a match
}

void PatternMatcher::push_capture(int i, const char* s, const char* e) {
    if (i >= level_) {
        if (i != 0) luaL_error(L_, "invalid capture index");
        lua_pushlstring(L_, s, static_cast<std::size_t>(e - s));
        return;
    }
    std::ptrdiff_t len = capture_[i].len;
    if (len == kUnfinished) luaL_error(L_, "unfinished capture");
    if (len == kPosition)
        lua_pushinteger(L_, capture_[i].init - src_init_ + 1);
    else
        lua_pushlstring(L_, capture_[i].init, static_cast<std::size_t>(len));
}

int PatternMatcher::push_captures(const char* s, const char* e, bool whole_if_none) {
    int n = level_ == 0 && whole_if_none ? 1 : level_;
    luaL_checkstack(L_, n, "too many captures");
    for (int i = 0; i < n; ++i)
        push_capture(i, s, e);
    return n;
}

} // namespace luaflow::scripting
