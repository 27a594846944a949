// A failed subprocess's error (SPEC 5): the exit code or signal, then the last stderr line that says
// something, masked, cut to a bounded length at a character boundary; and what is kept of stderr for it.
#include "daemon/exec/job.hpp"
#include "daemon/exec/process_runner.hpp"

#include <doctest/doctest.h>

#include <csignal>
#include <deque>

using namespace luaflow;
using exec::failure_message;
using exec::kErrorLineBytes;
using exec::shorten_line;

TEST_CASE("subprocess error: the exit code or signal ends with the last stderr line that says something") {
    std::vector<std::string> traceback = {"Traceback (most recent call last):", "  File \"x.py\", line 3",
                                          "ValueError: bad row 12", "", "   "};
    CHECK(failure_message(1, 0, traceback, nullptr) == "exit code 1: ValueError: bad row 12");
    CHECK(failure_message(3, 0, {}, nullptr) == "exit code 3");
    CHECK(failure_message(3, 0, {"", " \t"}, nullptr) == "exit code 3");
    CHECK(failure_message(0, SIGKILL, {"  waiting..."}, nullptr) == "killed by signal Killed: waiting...");
    CHECK(failure_message(0, SIGSEGV, {}, nullptr) == "killed by signal Segmentation fault");
}

TEST_CASE("subprocess error: a long last line is cut at a character boundary with an ellipsis") {
    std::string huge(1 << 20, 'x');
    std::string error = failure_message(1, 0, {huge}, nullptr);
    CHECK(error.size() ==
          std::string("exit code 1: ").size() + kErrorLineBytes + std::string("\u2026").size());
    CHECK(error.substr(error.size() - 3) == "\u2026");
    CHECK(shorten_line("short", 500) == "short");
    CHECK(shorten_line(std::string(500, 'y'), 500) == std::string(500, 'y'));
    // "é" is two bytes: a cut at 501 would split the 251st, so it comes after the 250th.
    std::string accents;
    for (int i = 0; i < 400; ++i)
        accents += "\u00e9";
    std::string cut = shorten_line(accents, 501);
    CHECK(cut.size() == 500 + 3);
    CHECK(cut.substr(0, 500) == accents.substr(0, 500));
    CHECK(cut.substr(500) == "\u2026");
}

TEST_CASE("subprocess error: secrets are masked before the cut, so no start of one shows") {
    const std::string secret = "s3cr3t-t0ken-value";
    auto redact = [&](std::string text) {
        for (std::size_t at; (at = text.find(secret)) != std::string::npos;)
            text.replace(at, secret.size(), "***");
        return text;
    };
    // The secret straddles the cut: masked first, it is "***" well inside the limit.
    std::string line = std::string(kErrorLineBytes - 5, 'a') + secret + " and more";
    std::string error = failure_message(2, 0, {line}, redact);
    CHECK(error.find("s3cr") == std::string::npos);
    CHECK(error == "exit code 2: " + std::string(kErrorLineBytes - 5, 'a') + "*** a\u2026");
}

TEST_CASE("subprocess error: the stderr kept is the last non-blank lines, each bounded") {
    std::deque<std::string> tail;
    exec::keep_stderr_line(tail, "");
    exec::keep_stderr_line(tail, "  \r");
    CHECK(tail.empty());
    for (std::size_t i = 0; i < exec::kStderrTailLines + 5; ++i)
        exec::keep_stderr_line(tail, "line " + std::to_string(i));
    exec::keep_stderr_line(tail, std::string(1 << 20, 'z'));
    CHECK(tail.size() == exec::kStderrTailLines);
    CHECK(tail.front() == "line 6");
    CHECK(tail.back().size() == exec::kStderrLineKept);
}
