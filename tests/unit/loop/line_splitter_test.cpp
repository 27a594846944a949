// loop::LineSplitter: lines across chunk boundaries, "\r\n", the 64 KiB cap (a line exactly at it, one
// byte over, a cut line followed by normal ones, a cut inside a UTF-8 character), a last line without a
// newline, NULs, and an owner that stops it from inside a line (issue 14, item 12).
#include "loop/line_splitter.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace luaflow;
using loop::kLineCutMarker;
using loop::kMaxLineBytes;
using loop::LineSplitter;

namespace {

// Feeds `chunks` in order and finishes; every line that came.
std::vector<std::string> split(const std::vector<std::string>& chunks) {
    LineSplitter s;
    std::vector<std::string> lines;
    for (const std::string& c : chunks)
        CHECK(s.feed(c, [&](std::string line) {
            lines.push_back(std::move(line));
            return true;
        }));
    if (auto last = s.finish()) lines.push_back(std::move(*last));
    return lines;
}

std::string cut(std::string first) {
    return first + std::string(kLineCutMarker);
}

} // namespace

TEST_CASE("line splitter: lines across chunk boundaries, byte by byte too") {
    CHECK(split({"one\ntw", "o\nthr", "ee\n"}) == std::vector<std::string>{"one", "two", "three"});
    std::string text = "alpha\nbeta\n\ngamma\n";
    std::vector<std::string> bytes;
    for (char c : text)
        bytes.emplace_back(1, c);
    CHECK(split(bytes) == std::vector<std::string>{"alpha", "beta", "", "gamma"});
}

TEST_CASE("line splitter: \\r\\n ends a line like \\n, across a chunk boundary too; a lone \\r stays") {
    CHECK(split({"a\r\nb\r", "\nc\rd\n"}) == std::vector<std::string>{"a", "b", "c\rd"});
}

TEST_CASE("line splitter: a last line without a newline comes at the end, once") {
    CHECK(split({"x\nlast"}) == std::vector<std::string>{"x", "last"});
    CHECK(split({"x\n"}) == std::vector<std::string>{"x"});
    CHECK(split({}).empty());
    LineSplitter s;
    CHECK(s.feed("tail", [](std::string) { return true; }));
    CHECK(s.finish() == std::optional<std::string>("tail"));
    CHECK_FALSE(s.finish());
}

TEST_CASE("line splitter: NUL bytes are part of a line") {
    std::string chunk("a\0b\n\0\n", 6);
    CHECK(split({chunk}) == std::vector<std::string>{std::string("a\0b", 3), std::string("\0", 1)});
}

TEST_CASE("line splitter: a line exactly at the cap is whole, with \\r\\n too, and at the end") {
    std::string full(kMaxLineBytes, 'x');
    CHECK(split({full + "\n", "next\n"}) == std::vector<std::string>{full, "next"});
    CHECK(split({full, "\r", "\n"}) == std::vector<std::string>{full});
    CHECK(split({full}) == std::vector<std::string>{full});
    CHECK(split({full + "\r"}) == std::vector<std::string>{full});
}

TEST_CASE("line splitter: one byte over the cap cuts the line, marked; the lines after it are whole") {
    std::string full(kMaxLineBytes, 'x');
    CHECK(split({full + "y\n", "after\n"}) == std::vector<std::string>{cut(full), "after"});
    // A "\r" past the cap that does not end the line is a byte over the cap.
    CHECK(split({full + "\r", "z\nafter\n"}) == std::vector<std::string>{cut(full), "after"});
}

TEST_CASE("line splitter: a huge line in many chunks comes cut at once, and its rest is dropped") {
    LineSplitter s;
    std::vector<std::string> lines;
    auto keep = [&](std::string line) {
        lines.push_back(std::move(line));
        return true;
    };
    std::string chunk(64 * 1024, 'a');
    CHECK(s.feed(chunk, keep));
    CHECK(lines.empty()); // exactly at the cap: it may still end here
    CHECK(s.feed("b", keep));
    REQUIRE(lines.size() == 1); // over it: out now, not when the newline comes
    CHECK(lines[0] == cut(chunk));
    for (int i = 0; i < 100; ++i) // 6.4 MB more of the same line
        CHECK(s.feed(chunk, keep));
    CHECK(s.feed("end of the long one\nshort\nunfinished", keep));
    CHECK(s.finish() == std::optional<std::string>("unfinished"));
    CHECK(lines == std::vector<std::string>{cut(chunk), "short"});
    // A cut line that never ends adds nothing at the end.
    LineSplitter t;
    std::vector<std::string> more;
    CHECK(t.feed(chunk + chunk, [&](std::string line) {
        more.push_back(std::move(line));
        return true;
    }));
    CHECK_FALSE(t.finish());
    CHECK(more.size() == 1);
}

TEST_CASE("line splitter: the cut does not split a UTF-8 character") {
    // "é" is two bytes; the second would sit right past the cap.
    std::string head(kMaxLineBytes - 1, 'x');
    auto lines = split({head + "\xc3\xa9" + "more\n"});
    REQUIRE(lines.size() == 1);
    CHECK(lines[0] == cut(head));
}

TEST_CASE("line splitter: an emit that returns false stops the feed at once") {
    LineSplitter s;
    std::vector<std::string> lines;
    CHECK_FALSE(s.feed("a\nb\nc\n", [&](std::string line) {
        lines.push_back(std::move(line));
        return false;
    }));
    CHECK(lines == std::vector<std::string>{"a"});
}
