#include "notifiers/message.hpp"

#include "common/utf8.hpp"
#include "notifiers/base64.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <string>
#include <vector>

using namespace luaflow::notifiers;

namespace {

Message failed_backup() {
    Message m;
    m.id = "01JNOTE";
    m.event = "failure";
    m.workflow = "nightly-backup";
    m.execution = "01JEXEC";
    m.status = "failed";
    m.error = "action 'fetch' failed: exit 1: curl: (6) Could not resolve host";
    m.duration_ms = 133'000;
    m.time_ms = 1'796'632'949'000;
    m.host = "edge-7";
    return m;
}

Message with_event(const char* event) {
    Message m = failed_backup();
    m.event = event;
    m.action = "fetch";
    return m;
}

// Only the test decodes: what header_text encodes must read back as the text it was given.
std::string base64_decode(const std::string& in) {
    static const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    unsigned bits = 0;
    int count = 0;
    for (char c : in) {
        if (c == '=') break;
        auto at = alphabet.find(c);
        if (at == std::string::npos) return "(not base64: " + in + ")";
        bits = (bits << 6) | static_cast<unsigned>(at);
        count += 6;
        if (count >= 8) {
            count -= 8;
            out += static_cast<char>((bits >> count) & 0xFF);
        }
    }
    return out;
}

std::vector<std::string> split(const std::string& s, const std::string& sep) {
    std::vector<std::string> parts;
    std::size_t from = 0;
    for (;;) {
        std::size_t at = s.find(sep, from);
        parts.push_back(s.substr(from, at - from));
        if (at == std::string::npos) return parts;
        from = at + sep.size();
    }
}

// The text of one encoded word, "=?UTF-8?B?...?=".
std::string decode_word(const std::string& word) {
    REQUIRE(word.rfind("=?UTF-8?B?", 0) == 0);
    REQUIRE(word.size() >= 12);
    REQUIRE(word.substr(word.size() - 2) == "?=");
    return base64_decode(word.substr(10, word.size() - 12));
}

std::size_t code_points(const std::string& s) {
    return static_cast<std::size_t>(std::count_if(
        s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

bool has_header(const WebhookRequest& r, const std::string& header) {
    return std::find(r.headers.begin(), r.headers.end(), header) != r.headers.end();
}

} // namespace

TEST_CASE("notifiers: subject_of names the workflow and what happened") {
    CHECK(subject_of(with_event("success")) == "[luaflow] nightly-backup succeeded");
    CHECK(subject_of(with_event("failure")) == "[luaflow] nightly-backup failed");
    CHECK(subject_of(with_event("timeout")) == "[luaflow] nightly-backup timed out");
    CHECK(subject_of(with_event("cancelled")) == "[luaflow] nightly-backup cancelled");
    CHECK(subject_of(with_event("retry")) == "[luaflow] nightly-backup: action 'fetch' failed, retrying");
    CHECK(subject_of(with_event("resource")) ==
          "[luaflow] nightly-backup: action 'fetch' stopped for exceeding a limit");
    CHECK(subject_of(with_event("skipped")) == "[luaflow] nightly-backup: scheduled run skipped");
    CHECK(subject_of(with_event("late")) == "[luaflow] nightly-backup: run started late");

    Message notify = with_event("notify");
    notify.subject = "disk almost full";
    CHECK(subject_of(notify) == "disk almost full");
    notify.subject.clear();
    CHECK(subject_of(notify) == "[luaflow] nightly-backup");
}

TEST_CASE("notifiers: a subject is one line of at most 200 bytes, cut between characters") {
    Message m = with_event("notify");
    m.subject = "line one\r\nline\ttwo";
    CHECK(subject_of(m) == "line one  line two");

    m.subject.clear();
    for (int i = 0; i < 150; ++i)
        m.subject += "\xC3\xBC"; // ü: 300 bytes
    std::string subject = subject_of(m);
    CHECK(subject.size() <= 200);
    CHECK(subject.size() >= 195);
    CHECK(subject.substr(subject.size() - 3) == "...");
    CHECK(luaflow::invalid_utf8_at(subject) == std::string::npos);
}

TEST_CASE("notifiers: text_of says what happened, the error, the host and how to see the logs") {
    CHECK(text_of(failed_backup()) ==
          "nightly-backup failed after 2m 13s\n"
          "execution 01JEXEC\n"
          "error: action 'fetch' failed: exit 1: curl: (6) Could not resolve host\n"
          "host: edge-7\n"
          "logs: luaflowctl logs 01JEXEC\n");

    Message quick = with_event("success");
    quick.error.clear();
    quick.duration_ms = 1500;
    CHECK(text_of(quick).rfind("nightly-backup succeeded after 1.5s\n", 0) == 0);
    quick.duration_ms = 90'061'000;
    CHECK(text_of(quick).rfind("nightly-backup succeeded after 1d 1h\n", 0) == 0);
    quick.duration_ms.reset();
    CHECK(text_of(quick).rfind("nightly-backup succeeded\n", 0) == 0);

    Message retry = with_event("retry");
    retry.detail = "attempt 2/3 in 30s";
    std::string text = text_of(retry);
    CHECK(text.rfind("nightly-backup: action 'fetch' failed, retrying\n", 0) == 0);
    CHECK(text.find("attempt 2/3 in 30s\n") != std::string::npos);
    CHECK(text.find("logs: luaflowctl logs 01JEXEC\n") != std::string::npos);
}

TEST_CASE("notifiers: text_of keeps the error's first 5 lines and 1000 bytes") {
    Message m = failed_backup();
    m.error = "one\r\ntwo\nthree\nfour\nfive\nsix\nseven\n";
    CHECK(text_of(m).find("error: one\ntwo\nthree\nfour\nfive\n...\nhost: edge-7\n") != std::string::npos);

    m.error.clear();
    for (int i = 0; i < 600; ++i)
        m.error += "\xE2\x9C\x93"; // ✓: 1800 bytes on one line
    std::string text = text_of(m);
    std::size_t from = text.find("error: ") + 7;
    std::string error = text.substr(from, text.find('\n', from) - from);
    CHECK(error.size() <= 1000);
    CHECK(error.size() >= 996);
    CHECK(error.substr(error.size() - 3) == "...");
    CHECK(luaflow::invalid_utf8_at(error) == std::string::npos);
}

TEST_CASE("notifiers: a skipped run's text has no execution and no logs") {
    Message m = with_event("skipped");
    m.execution.clear();
    m.error.clear();
    m.duration_ms.reset();
    m.detail = "the previous run was still running (overlap = \"skip\")";
    CHECK(text_of(m) == "nightly-backup: scheduled run skipped\n"
                        "the previous run was still running (overlap = \"skip\")\n"
                        "host: edge-7\n");
}

TEST_CASE("notifiers: notify()'s text is the caller's body, then where it came from") {
    Message m = with_event("notify");
    m.subject = "disk almost full";
    m.body = "/srv is 93% full\n";
    CHECK(text_of(m) == "/srv is 93% full\n\nfrom workflow nightly-backup, execution 01JEXEC\n"
                        "logs: luaflowctl logs 01JEXEC\n");
}

TEST_CASE("notifiers: message to_json and message_from_json round trip, and reading is tolerant") {
    Message m = with_event("retry");
    m.detail = "next attempt in 30s";
    m.subject = "s";
    m.body = "b";
    nlohmann::json j = to_json(m);
    CHECK(j["duration_ms"] == 133'000);
    Message back = message_from_json(nlohmann::json::parse(j.dump()));
    CHECK(to_json(back) == j);
    CHECK(back.time_ms == m.time_ms);
    CHECK(back.duration_ms == m.duration_ms);

    m.duration_ms.reset();
    CHECK(to_json(m)["duration_ms"].is_null());
    CHECK_FALSE(message_from_json(to_json(m)).duration_ms);

    Message odd =
        message_from_json({{"id", 7}, {"workflow", "w"}, {"time_ms", "soon"}, {"duration_ms", 1.5}});
    CHECK(odd.id.empty());
    CHECK(odd.workflow == "w");
    CHECK(odd.time_ms == 0);
    CHECK_FALSE(odd.duration_ms);
    CHECK(message_from_json(nlohmann::json::array()).workflow.empty());
}

TEST_CASE("notifiers: every webhook format carries the notification id") {
    for (const char* format : {"json", "slack", "discord", "ntfy"}) {
        CAPTURE(format);
        CHECK(has_header(webhook_request(format, failed_backup()), "X-Luaflow-Notification-Id: 01JNOTE"));
    }
}

TEST_CASE("notifiers: json webhook is the message with its subject and text") {
    Message m = failed_backup();
    WebhookRequest r = webhook_request("json", m);
    CHECK(r.content_type == "application/json");
    auto body = nlohmann::json::parse(r.body);
    CHECK(body["workflow"] == "nightly-backup");
    CHECK(body["execution"] == "01JEXEC");
    CHECK(body["duration_ms"] == 133'000);
    CHECK(body["subject"] == subject_of(m));
    CHECK(body["text"] == text_of(m));
}

TEST_CASE("notifiers: slack webhook is text with the subject in bold, &, < and > escaped") {
    Message m = failed_backup();
    m.error = "<!channel> a & b > c";
    WebhookRequest r = webhook_request("slack", m);
    CHECK(r.content_type == "application/json");
    auto body = nlohmann::json::parse(r.body);
    REQUIRE(body.size() == 1);
    std::string text = body["text"];
    CHECK(text.rfind("*[luaflow] nightly-backup failed*\nnightly-backup failed after 2m 13s\n", 0) == 0);
    CHECK(text.find("error: &lt;!channel&gt; a &amp; b &gt; c\n") != std::string::npos);
    CHECK(text.find('<') == std::string::npos);
}

TEST_CASE("notifiers: discord webhook content pings no one and stays within 2000 characters") {
    Message m = failed_backup();
    m.error = "@everyone look";
    WebhookRequest r = webhook_request("discord", m);
    CHECK(r.content_type == "application/json");
    auto body = nlohmann::json::parse(r.body);
    CHECK(body["allowed_mentions"] == nlohmann::json{{"parse", nlohmann::json::array()}});
    std::string content = body["content"];
    CHECK(content.rfind("**[luaflow] nightly-backup failed**\nnightly-backup failed after 2m 13s\n", 0) == 0);
    CHECK(content.find("error: @everyone look\n") != std::string::npos);

    Message big = with_event("notify");
    for (int i = 0; i < 3000; ++i)
        big.body += "\xC3\xA9"; // é
    big.body += "\xFF";         // and a byte that is not UTF-8
    content = nlohmann::json::parse(webhook_request("discord", big).body)["content"];
    CHECK(code_points(content) == 2000);
    CHECK(content.substr(content.size() - 3) == "...");
    CHECK(luaflow::invalid_utf8_at(content) == std::string::npos);
}

TEST_CASE("notifiers: ntfy webhook is plain text with title, priority and tag headers") {
    WebhookRequest r = webhook_request("ntfy", failed_backup());
    CHECK(r.content_type == "text/plain; charset=utf-8");
    CHECK(r.body == text_of(failed_backup()));
    CHECK(has_header(r, "Title: [luaflow] nightly-backup failed"));
    CHECK(has_header(r, "Priority: high"));
    CHECK(has_header(r, "Tags: rotating_light"));

    r = webhook_request("ntfy", with_event("success"));
    CHECK(has_header(r, "Priority: default"));
    CHECK(has_header(r, "Tags: white_check_mark"));
    CHECK(has_header(webhook_request("ntfy", with_event("retry")), "Tags: warning"));

    Message german = with_event("notify");
    german.subject = "\xC3\x9C"
                     "berwachung fehlgeschlagen \xE2\x9C\x93";
    r = webhook_request("ntfy", german);
    auto title = std::find_if(r.headers.begin(), r.headers.end(),
                              [](const std::string& h) { return h.rfind("Title: ", 0) == 0; });
    REQUIRE(title != r.headers.end());
    CHECK(title->find('\r') == std::string::npos); // HTTP headers are not folded
    CHECK(title->rfind("Title: =?UTF-8?B?", 0) == 0);
}

TEST_CASE("notifiers: base64_encode gives RFC 4648's test vectors") {
    CHECK(base64_encode("") == "");
    CHECK(base64_encode("f") == "Zg==");
    CHECK(base64_encode("fo") == "Zm8=");
    CHECK(base64_encode("foo") == "Zm9v");
    CHECK(base64_encode("foobar") == "Zm9vYmFy");
    std::string long_input(10'000, 'x');
    auto encoded = base64_encode(long_input);
    REQUIRE(encoded);
    CHECK(base64_decode(*encoded) == long_input);
}

TEST_CASE("notifiers: header_text leaves printable ASCII alone") {
    CHECK(header_text("[luaflow] nightly-backup failed") == "[luaflow] nightly-backup failed");
    CHECK(header_text("") == "");
}

TEST_CASE("notifiers: header_text encodes UTF-8 as RFC 2047 words that decode back") {
    const std::string text = "\xC3\x9C"
                             "berwachung fehlgeschlagen \xE2\x9C\x93"; // Überwachung fehlgeschlagen ✓
    std::string encoded = header_text(text);
    std::string decoded;
    for (const std::string& word : split(encoded, "\r\n ")) {
        CHECK(word.size() <= 75);
        decoded += decode_word(word);
    }
    CHECK(decoded == text);
}

TEST_CASE("notifiers: header_text splits a long subject between characters, each word at most 75") {
    std::string text;
    while (text.size() < 300)
        text += "a\xE2\x82\xAC\xC3\xA9"; // a € é: 6 bytes
    std::string encoded = header_text(text);
    std::vector<std::string> words = split(encoded, "\r\n ");
    CHECK(words.size() >= 7); // 300 bytes / 45
    std::string decoded;
    for (const std::string& word : words) {
        CAPTURE(word);
        CHECK(word.size() <= 75);
        std::string part = decode_word(word);
        CHECK(luaflow::invalid_utf8_at(part) == std::string::npos);
        decoded += part;
    }
    CHECK(decoded == text);
}

TEST_CASE("notifiers: rfc5322_date is English and UTC whatever the locale") {
    CHECK(rfc5322_date(1'796'632'949'000) == "Mon, 07 Dec 2026 08:42:29 +0000");
    CHECK(rfc5322_date(1'796'632'949'999) == "Mon, 07 Dec 2026 08:42:29 +0000");
    CHECK(rfc5322_date(0) == "Thu, 01 Jan 1970 00:00:00 +0000");
    CHECK(rfc5322_date(-1) == "Wed, 31 Dec 1969 23:59:59 +0000");
}
