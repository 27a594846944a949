#pragma once
// What the libFuzzer targets share: a scratch directory for the process, the daemon's log kept to errors
// (the fuzzer's own output stays readable), and Services for code that runs outside an execution.
#include "common/log.hpp"
#include "stdlib/services.hpp"
#include "tests/unit/support/temp_dir.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace luaflow::fuzz {

// Called at the top of each target's one-time setup.
inline void quiet_process() {
    log::init();
    log::set_min_level(log::Level::error);
    std::signal(SIGPIPE, SIG_IGN); // as the daemon: a closed peer is an error value, not a signal
}

// A property of the code under test does not hold: a crash that libFuzzer records with its input.
[[noreturn]] inline void violated(const std::string& what) {
    std::fprintf(stderr, "fuzz property violated: %s\n", what.c_str());
    std::abort();
}

// Services for a state that runs at load time (as luaflowd --check has): log lines are dropped.
class LoadServices final : public stdlib::Services {
  public:
    explicit LoadServices(uv_loop_t* loop) : loop_(loop) {}
    uv_loop_t* loop() override { return loop_; }
    void log_line(const scripting::Task*, const std::string&, stdlib::LogLevel, const std::string&) override {
    }

  private:
    uv_loop_t* loop_;
};

} // namespace luaflow::fuzz
