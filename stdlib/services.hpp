#pragma once
// What the standard library needs from the engine, handed over when a state is created (the way Neovim
// hands luv its loop). The stdlib knows nothing else of the daemon.
#include "scripting/task.hpp"

#include <uv.h>

#include <string>

namespace luaflow::stdlib {

enum class LogLevel { debug, info, warn, error };
const char* to_string(LogLevel level);

class Services {
  public:
    virtual ~Services() = default;
    virtual uv_loop_t* loop() = 0;
    // A line from log.* : into the job's log when `task` is set, else into the daemon's log
    // (code running at load time) naming `workflow`.
    virtual void log_line(const scripting::Task* task, const std::string& workflow, LogLevel level,
                          const std::string& line) = 0;
};

} // namespace luaflow::stdlib
