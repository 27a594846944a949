#pragma once
// What a notification says (SPEC 8), fixed when its outbox row is written, and how each transport puts
// it: an e-mail's subject, text and headers, and a webhook's body in the json, slack, discord and ntfy
// shapes those services document for their incoming webhooks. Pure functions: the sender (outbox.cpp)
// and the transports (email.cpp, webhook.cpp) do the I/O.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace luaflow::notifiers {

struct Message {
    std::string id;    // stable across attempts and restarts: Message-ID, X-Luaflow-Notification-Id
    std::string event; // success failure timeout cancelled retry resource skipped late, or notify
    std::string workflow;
    std::string execution; // empty: none (skipped)
    std::string action;    // retry, resource: the action it is about; else empty
    std::string status;    // the execution's status (retry, resource: the action's); may be empty
    std::string error;     // may be empty
    std::optional<std::int64_t> duration_ms;
    std::int64_t time_ms = 0;  // when it happened, Unix milliseconds
    std::string host;          // the machine luaflowd runs on
    std::string detail;        // skipped, late: the event's own words; retry: when the next attempt is
    std::string subject, body; // notify(): the caller's own; else empty (made from the rest)
};

nlohmann::json to_json(const Message& m);
// The fields to_json wrote; a missing or mistyped one is left empty.
Message message_from_json(const nlohmann::json& j);

// "[luaflow] nightly-backup failed", "[luaflow] nightly-backup: action 'fetch' retrying", or the caller's
// subject for notify(). One line, never more than 200 bytes (cut at a UTF-8 boundary, with "...").
std::string subject_of(const Message& m);
// A short text, readable on a phone: what happened, the error (its first lines), the duration, the host,
// and the command that shows the logs ("luaflowctl logs EXEC"). notify(): the caller's body, then the
// workflow and execution it came from.
std::string text_of(const Message& m);

// A webhook POST: its body, its Content-Type, and the extra headers ("Name: value") the format wants.
struct WebhookRequest {
    std::string content_type;
    std::string body;
    std::vector<std::string> headers;
};
// `format` is json, slack, discord or ntfy (config_loader has checked it). Every request carries
// "X-Luaflow-Notification-Id: <id>".
WebhookRequest webhook_request(std::string_view format, const Message& m);

// RFC 2047: `text` as it may stand in a header: itself when it is printable ASCII, else encoded words
// (=?UTF-8?B?...?=) of at most 75 characters each, split between UTF-8 characters and joined by
// "\r\n " (folded), the base64 done by libcrypto (base64.hpp).
std::string header_text(std::string_view text);
// "450ms", "1.5s", "2m 13s", "1d 1h": the two largest units, read at a glance.
std::string readable_duration(std::int64_t ms);
// RFC 5322 date-time of a Unix millisecond time, in UTC: "Mon, 07 Dec 2026 08:42:29 +0000".
std::string rfc5322_date(std::int64_t unix_ms);

} // namespace luaflow::notifiers
