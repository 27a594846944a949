#pragma once
// The daemon's own log: one line per event on stderr. Under systemd (JOURNAL_STREAM set) each
// line starts with a "<N>" syslog priority instead of a timestamp, so journald keeps the level.
#include <string>

namespace luaflow::log {

enum class Level { error = 3, warning = 4, notice = 5, info = 6, debug = 7 };

// Reads JOURNAL_STREAM once; call before the first line.
void init();
void set_min_level(Level level);
void write(Level level, const std::string& line);

void error(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void warn(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void notice(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void info(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void debug(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

} // namespace luaflow::log
