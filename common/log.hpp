#pragma once
// The daemon's own log: one line per event on stderr. Under systemd (JOURNAL_STREAM set) each
// line starts with a "<N>" syslog priority instead of a timestamp, so journald keeps the level.
#include <string>
#include <string_view>

namespace luaflow::log {

enum class Level { error = 3, warning = 4, notice = 5, info = 6, debug = 7 };

// What a line is about, for the journal's fields (LUAFLOW_WORKFLOW=, LUAFLOW_EXECUTION=, LUAFLOW_ACTION=:
// `journalctl LUAFLOW_WORKFLOW=backup` shows one workflow's story); empty ones are left out.
struct About {
    std::string_view workflow, execution, action;
};

// Takes a line instead of stderr (the journal's native protocol, loop/journal); false when it could not
// (then the line goes to stderr as ever). Runs on whichever thread logs.
using Sink = bool (*)(Level level, const std::string& line, const About& about);
void set_sink(Sink sink);

// Reads JOURNAL_STREAM once; call before the first line.
void init();
void set_min_level(Level level);
void write(Level level, const std::string& line, const About& about = {});

void error(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void warn(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void notice(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void info(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void debug(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
// The same, about a workflow, an execution, an action.
void error_about(const About& about, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void warn_about(const About& about, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void info_about(const About& about, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

} // namespace luaflow::log
