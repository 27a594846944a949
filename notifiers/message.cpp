// What a notification says and how each transport puts it (message.hpp). Every limit here is a reader's:
// a subject fits a phone's notification line and a mail client's list, the error its first lines, and each
// webhook the shape and size its service documents.
#include "notifiers/message.hpp"

#include "common/event.hpp"
#include "common/utf8.hpp"
#include "notifiers/base64.hpp"

#include <cstdio>
#include <ctime>
#include <limits>

namespace luaflow::notifiers {

namespace {

constexpr std::size_t kSubjectBytes = 200;
constexpr std::size_t kErrorLines = 5;
constexpr std::size_t kErrorBytes = 1000;
// "Contents of the message, up to 2000 characters" (Discord, Execute Webhook).
constexpr std::size_t kDiscordCharacters = 2000;
// RFC 2047 section 2: "An 'encoded-word' may not be more than 75 characters long". "=?UTF-8?B?" and "?="
// leave 63 characters, so 60 of base64: 45 bytes.
constexpr std::size_t kEncodedWordBytes = 45;
constexpr const char* kEllipsis = "...";

bool is_continuation(unsigned char c) {
    return (c & 0xC0) == 0x80;
}

// The length of the UTF-8 character that starts at s[i]: its lead byte's count when its continuation bytes
// follow, else 1 (a broken byte stands alone, so that nothing is ever cut inside a real character).
std::size_t char_length(std::string_view s, std::size_t i) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80             ? 1
                    : (c & 0xE0) == 0xC0 ? 2
                    : (c & 0xF0) == 0xE0 ? 3
                    : (c & 0xF8) == 0xF0 ? 4
                                         : 1;
    if (i + n > s.size()) return 1;
    for (std::size_t k = 1; k < n; ++k)
        if (!is_continuation(static_cast<unsigned char>(s[i + k]))) return 1;
    return n;
}

// `s` in at most `max` bytes: cut before a whole character, ending with "...".
std::string cut_bytes(std::string_view s, std::size_t max) {
    if (s.size() <= max) return std::string(s);
    std::size_t end = max - 3;
    // A UTF-8 character has at most 3 continuation bytes.
    for (int back = 0; back < 3 && end > 0 && is_continuation(static_cast<unsigned char>(s[end])); ++back)
        --end;
    return std::string(s.substr(0, end)) + kEllipsis;
}

// `s` (valid UTF-8) in at most `max` code points, ending with "..." when cut.
std::string cut_code_points(std::string_view s, std::size_t max) {
    std::size_t count = 0;
    for (char c : s)
        if (!is_continuation(static_cast<unsigned char>(c))) ++count;
    if (count <= max) return std::string(s);
    std::size_t keep = max - 3, seen = 0, end = 0;
    for (; end < s.size(); ++end) {
        if (!is_continuation(static_cast<unsigned char>(s[end])) && seen++ == keep) break;
    }
    return std::string(s.substr(0, end)) + kEllipsis;
}

// Each byte that breaks UTF-8 as U+FFFD, as nlohmann's error_handler_t::replace would put it: done before
// counting characters, so the count is that of the text sent.
std::string valid_utf8(std::string_view s) {
    std::string out;
    for (;;) {
        std::size_t at = invalid_utf8_at(s);
        if (at == std::string_view::npos) break;
        out.append(s.substr(0, at));
        out += "\xEF\xBF\xBD";
        s.remove_prefix(at + 1);
    }
    out.append(s);
    return out;
}

// Control characters (CR, LF, TAB, ...) as spaces: a subject is one line, and a header must not break.
std::string one_line(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = ' ';
    return out;
}

// Without its trailing line ends and spaces, CRLF read as LF.
std::string trimmed_lines(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i)
        if (!(s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n')) out += s[i];
    while (!out.empty() &&
           (out.back() == '\n' || out.back() == '\r' || out.back() == ' ' || out.back() == '\t'))
        out.pop_back();
    return out;
}

// The error's first lines, at most kErrorBytes, with "..." where something was left out.
std::string error_excerpt(std::string_view error) {
    std::string text = trimmed_lines(error);
    // The line end after the last line kept, if a line follows it.
    std::size_t end = std::string::npos;
    for (std::size_t lines = 0, from = 0; lines < kErrorLines; ++lines, from = end + 1)
        if ((end = text.find('\n', from)) == std::string::npos) break;
    if (end != std::string::npos) {
        text.resize(end);
        text += "\n...";
    }
    return cut_bytes(text, kErrorBytes);
}

std::string action_phrase(const Message& m) {
    return m.action.empty() ? std::string("an action") : "action '" + m.action + "'";
}

// The subject without its "[luaflow] ", and the first line of the text. A notify() message, or an
// event this version does not know, is the workflow's name (and the unknown event's).
std::string headline(const Message& m, std::optional<Event> event) {
    if (!event) return m.event.empty() || m.event == "notify" ? m.workflow : m.workflow + ": " + m.event;
    switch (*event) {
    case Event::success:
        return m.workflow + " succeeded";
    case Event::failure:
        return m.workflow + " failed";
    case Event::timeout:
        return m.workflow + " timed out";
    case Event::cancelled:
        return m.workflow + " cancelled";
    case Event::retry:
        return m.workflow + ": " + action_phrase(m) + " failed, retrying";
    case Event::resource:
        return m.workflow + ": " + action_phrase(m) + " stopped for exceeding a limit";
    case Event::skipped:
        return m.workflow + ": scheduled run skipped";
    case Event::late:
        return m.workflow + ": run started late";
    }
    return m.workflow;
}

// An execution's end, whose duration reads as "failed after 2m 13s".
bool is_end(Event e) {
    return e == Event::success || e == Event::failure || e == Event::timeout || e == Event::cancelled;
}

std::string string_at(const nlohmann::json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::optional<std::int64_t> integer_at(const nlohmann::json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_number_integer()) return std::nullopt;
    if (it->is_number_unsigned() &&
        it->get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        return std::nullopt;
    return it->get<std::int64_t>();
}

std::string dump(const nlohmann::json& j) {
    // Replace, never throw: an error text is whatever a program printed, and may not be UTF-8.
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Slack's mrkdwn reads &, < and > as its own control characters: "you must replace the three characters
// with HTML entities" (Slack, Formatting text for app surfaces, "Escaping text").
std::string slack_escaped(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        if (c == '&')
            out += "&amp;";
        else if (c == '<')
            out += "&lt;";
        else if (c == '>')
            out += "&gt;";
        else
            out += c;
    }
    return out;
}

// RFC 2047 encoded words joined by `separator`; see header_text.
std::string encoded_words(std::string_view text, const char* separator) {
    bool printable = true;
    for (char c : text)
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7E) printable = false;
    if (printable) return std::string(text);
    std::string out;
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t end = start;
        while (end < text.size()) {
            std::size_t n = char_length(text, end);
            if (end + n - start > kEncodedWordBytes) break;
            end += n;
        }
        auto encoded = base64_encode(text.substr(start, end - start));
        if (!encoded) {
            // Without libcrypto there is no base64 (and we write none of our own): the header keeps its
            // ASCII and shows '?' for each other character, as a mail client shows what it cannot read.
            // Raw UTF-8 would need SMTPUTF8 from every relay, and is not allowed in an HTTP header.
            out.clear();
            for (std::size_t i = 0; i < text.size();) {
                auto c = static_cast<unsigned char>(text[i]);
                out += c >= 0x20 && c <= 0x7E ? static_cast<char>(c) : '?';
                i += char_length(text, i);
            }
            return out;
        }
        if (!out.empty()) out += separator;
        out += "=?UTF-8?B?" + *encoded + "?=";
        start = end;
    }
    return out;
}

const char* ntfy_priority(std::optional<Event> event) {
    if (!event) return "default";
    switch (*event) {
    case Event::failure:
    case Event::timeout:
    case Event::resource:
    case Event::retry:
        return "high";
    default:
        return "default";
    }
}

// One of ntfy's emoji shortcodes, shown before the title.
const char* ntfy_tag(std::optional<Event> event) {
    if (!event) return "bell";
    switch (*event) {
    case Event::success:
        return "white_check_mark";
    case Event::failure:
    case Event::timeout:
    case Event::resource:
        return "rotating_light";
    case Event::cancelled:
        return "no_entry";
    case Event::retry:
    case Event::skipped:
    case Event::late:
        return "warning";
    }
    return "bell";
}

} // namespace

// "450ms", "1.5s", "42s", "2m 13s", "1h 5m", "3d 4h": the two largest units, read at a glance (the
// config's format_duration spells exact values, such as "133s", for parse_duration to read back).
std::string readable_duration(std::int64_t ms) {
    if (ms < 0) ms = 0;
    char buf[64];
    if (ms < 1000) {
        std::snprintf(buf, sizeof buf, "%lldms", static_cast<long long>(ms));
    } else if (ms < 10'000 && ms / 100 % 10 != 0) {
        std::snprintf(buf, sizeof buf, "%lld.%llds", static_cast<long long>(ms / 1000),
                      static_cast<long long>(ms / 100 % 10));
    } else if (ms < 60'000) {
        std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(ms / 1000));
    } else {
        struct Unit {
            std::int64_t size;
            const char* name;
        };
        static constexpr Unit units[] = {{86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1000, "s"}};
        std::size_t u = 0;
        while (ms < units[u].size)
            ++u;
        long long big = ms / units[u].size;
        long long small = ms % units[u].size / units[u + 1].size;
        if (small == 0)
            std::snprintf(buf, sizeof buf, "%lld%s", big, units[u].name);
        else
            std::snprintf(buf, sizeof buf, "%lld%s %lld%s", big, units[u].name, small, units[u + 1].name);
    }
    return buf;
}

nlohmann::json to_json(const Message& m) {
    return nlohmann::json{
        {"id", m.id},
        {"event", m.event},
        {"workflow", m.workflow},
        {"execution", m.execution},
        {"action", m.action},
        {"status", m.status},
        {"error", m.error},
        {"duration_ms", m.duration_ms ? nlohmann::json(*m.duration_ms) : nlohmann::json(nullptr)},
        {"time_ms", m.time_ms},
        {"host", m.host},
        {"detail", m.detail},
        {"subject", m.subject},
        {"body", m.body},
    };
}

Message message_from_json(const nlohmann::json& j) {
    Message m;
    if (!j.is_object()) return m;
    m.id = string_at(j, "id");
    m.event = string_at(j, "event");
    m.workflow = string_at(j, "workflow");
    m.execution = string_at(j, "execution");
    m.action = string_at(j, "action");
    m.status = string_at(j, "status");
    m.error = string_at(j, "error");
    m.duration_ms = integer_at(j, "duration_ms");
    m.time_ms = integer_at(j, "time_ms").value_or(0);
    m.host = string_at(j, "host");
    m.detail = string_at(j, "detail");
    m.subject = string_at(j, "subject");
    m.body = string_at(j, "body");
    return m;
}

std::string subject_of(const Message& m) {
    std::optional<Event> event = parse_event(m.event);
    std::string subject;
    if (!event && !m.subject.empty())
        subject = m.subject;
    else
        subject = "[luaflow] " + headline(m, event);
    return cut_bytes(one_line(subject), kSubjectBytes);
}

std::string text_of(const Message& m) {
    std::optional<Event> event = parse_event(m.event);
    std::string logs = m.execution.empty() ? std::string() : "logs: luaflowctl logs " + m.execution + "\n";
    if (!event) {
        std::string body = trimmed_lines(m.body);
        std::string text = body.empty() ? std::string() : body + "\n\n";
        text += "from workflow " + m.workflow;
        if (!m.execution.empty()) text += ", execution " + m.execution;
        return text + "\n" + logs;
    }
    std::string text = headline(m, event);
    if (m.duration_ms && is_end(*event)) text += " after " + readable_duration(*m.duration_ms);
    text += "\n";
    if (m.duration_ms && !is_end(*event)) text += "duration: " + readable_duration(*m.duration_ms) + "\n";
    if (!m.detail.empty()) text += trimmed_lines(m.detail) + "\n";
    if (!m.execution.empty()) text += "execution " + m.execution + "\n";
    if (!m.status.empty() && (*event == Event::retry || *event == Event::resource))
        text += "status: " + m.status + "\n";
    if (!m.error.empty()) text += "error: " + error_excerpt(m.error) + "\n";
    if (!m.host.empty()) text += "host: " + m.host + "\n";
    return text + logs;
}

WebhookRequest webhook_request(std::string_view format, const Message& m) {
    WebhookRequest request;
    request.headers.push_back("X-Luaflow-Notification-Id: " + one_line(m.id));
    std::string subject = subject_of(m);
    std::string text = text_of(m);
    if (format == "slack") {
        request.content_type = "application/json";
        request.body = dump({{"text", slack_escaped("*" + subject + "*\n" + text)}});
    } else if (format == "discord") {
        request.content_type = "application/json";
        std::string content = cut_code_points(valid_utf8("**" + subject + "**\n" + text), kDiscordCharacters);
        // "parse": [] turns every mention off: an error text that says @everyone pings no one.
        request.body =
            dump({{"content", content}, {"allowed_mentions", {{"parse", nlohmann::json::array()}}}});
    } else if (format == "ntfy") {
        request.content_type = "text/plain; charset=utf-8";
        request.body = text;
        // ntfy decodes RFC 2047 words in its headers. A space between the words rather than a fold:
        // HTTP/1.1 deprecates folded header lines (RFC 9112 section 5.2), and a space between two encoded
        // words is dropped when they are decoded (RFC 2047 section 6.2).
        request.headers.push_back("Title: " + encoded_words(subject, " "));
        request.headers.push_back(std::string("Priority: ") + ntfy_priority(parse_event(m.event)));
        request.headers.push_back(std::string("Tags: ") + ntfy_tag(parse_event(m.event)));
    } else {
        // json, and anything config_loader let through: everything, plus what the other formats show.
        request.content_type = "application/json";
        nlohmann::json j = to_json(m);
        j["subject"] = subject;
        j["text"] = text;
        request.body = dump(j);
    }
    return request;
}

std::string header_text(std::string_view text) {
    return encoded_words(text, "\r\n ");
}

std::string rfc5322_date(std::int64_t unix_ms) {
    // Fixed names, not strftime's %a and %b: those follow the process's locale, and RFC 5322 wants English.
    static constexpr const char* days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                             "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    std::int64_t seconds = unix_ms / 1000 - (unix_ms % 1000 < 0 ? 1 : 0);
    std::time_t t = static_cast<std::time_t>(seconds);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
                  months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return buf;
}

} // namespace luaflow::notifiers
