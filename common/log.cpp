#include "common/log.hpp"

#include "common/time_format.hpp"

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <unistd.h>

namespace luaflow::log {
namespace {

bool journal = false;
Level min_level = Level::info;
std::atomic<Sink> sink{nullptr};

void vwrite(Level level, const About& about, const char* fmt, va_list ap) {
    if (static_cast<int>(level) > static_cast<int>(min_level)) return;
    char buf[4096];
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    write(level, buf, about);
}

const char* level_name(Level level) {
    switch (level) {
    case Level::error:
        return "error";
    case Level::warning:
        return "warning";
    case Level::notice:
        return "notice";
    case Level::info:
        return "info";
    case Level::debug:
        return "debug";
    }
    return "info";
}

} // namespace

void init() {
    journal = std::getenv("JOURNAL_STREAM") != nullptr;
}

void set_min_level(Level level) {
    min_level = level;
}

void set_sink(Sink s) {
    sink = s;
}

void write(Level level, const std::string& line, const About& about) {
    if (Sink s = sink; s && s(level, line, about)) return;
    std::string out;
    if (journal) {
        out = "<" + std::to_string(static_cast<int>(level)) + ">" + line + "\n";
    } else {
        out = format_rfc3339(now_unix_ms()) + " " + level_name(level) + ": " + line + "\n";
    }
    // One write(2) per line so that concurrent writers never interleave within a line.
    ssize_t ignored = ::write(STDERR_FILENO, out.data(), out.size());
    (void)ignored;
}

#define LUAFLOW_LOG_FN(name, level)                                                                          \
    void name(const char* fmt, ...) {                                                                        \
        va_list ap;                                                                                          \
        va_start(ap, fmt);                                                                                   \
        vwrite(level, {}, fmt, ap);                                                                          \
        va_end(ap);                                                                                          \
    }
LUAFLOW_LOG_FN(error, Level::error)
LUAFLOW_LOG_FN(warn, Level::warning)
LUAFLOW_LOG_FN(notice, Level::notice)
LUAFLOW_LOG_FN(info, Level::info)
LUAFLOW_LOG_FN(debug, Level::debug)
#undef LUAFLOW_LOG_FN

#define LUAFLOW_LOG_ABOUT_FN(name, level)                                                                    \
    void name(const About& about, const char* fmt, ...) {                                                    \
        va_list ap;                                                                                          \
        va_start(ap, fmt);                                                                                   \
        vwrite(level, about, fmt, ap);                                                                       \
        va_end(ap);                                                                                          \
    }
LUAFLOW_LOG_ABOUT_FN(error_about, Level::error)
LUAFLOW_LOG_ABOUT_FN(warn_about, Level::warning)
LUAFLOW_LOG_ABOUT_FN(info_about, Level::info)
#undef LUAFLOW_LOG_ABOUT_FN

} // namespace luaflow::log
