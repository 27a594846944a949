#include "notifiers/delivery.hpp"

#include "version.hpp"

#include <algorithm>

namespace luaflow::notifiers {

namespace {

// What a failed webhook's answer may add to its error: enough to read a receiver's reason.
constexpr std::size_t kMaxAnswer = 512;
const std::string kUserAgent = std::string("luaflow/") + kVersion;

// "<a@b>" as SMTP's MAIL FROM and RCPT TO want it; an address already in brackets is kept.
std::string angle(const std::string& address) {
    auto lt = address.find('<');
    auto gt = address.rfind('>');
    if (lt != std::string::npos && gt != std::string::npos && lt < gt) return address.substr(lt, gt - lt + 1);
    return "<" + address + ">";
}

// The answer's first line, printable, for an error message.
std::string first_line(std::string s) {
    s = s.substr(0, s.find_first_of("\r\n"));
    for (char& c : s)
        if (static_cast<unsigned char>(c) < 0x20) c = ' ';
    return s;
}

} // namespace

Delivery::Delivery(loop::CurlMulti& multi) : multi_(multi), curl_(multi.api()) {}

Delivery::~Delivery() {
    if (easy_) multi_.release(easy_); // removes a transfer still running: no callback follows
    if (headers_) curl_.slist_free_all(headers_);
    if (recipients_) curl_.slist_free_all(recipients_);
    if (mime_) curl_.mime_free(mime_);
}

Result<std::unique_ptr<Delivery>> Delivery::start(loop::CurlMulti& multi, const config::NotifierConfig& to,
                                                  const Message& m, const std::string& password, Done done) {
    std::unique_ptr<Delivery> d(new Delivery(multi));
    d->easy_ = multi.acquire();
    if (!d->easy_) return make_error(ErrorCode::internal, "out of memory");
    const loop::CurlApi& c = d->curl_;
    c.easy_set<CURLOPT_NOSIGNAL>(d->easy_, 1L);
    c.easy_set<CURLOPT_TIMEOUT_MS>(d->easy_, kDeliveryTimeoutMs);
    c.easy_set<CURLOPT_CONNECTTIMEOUT_MS>(d->easy_, kConnectTimeoutMs);
    c.easy_set<CURLOPT_ERRORBUFFER>(d->easy_, d->error_);
    c.easy_set<CURLOPT_URL>(d->easy_, to.url.c_str());
    if (!to.ca_file.empty()) c.easy_set<CURLOPT_CAINFO>(d->easy_, to.ca_file.c_str());
    auto ready = to.kind == config::NotifierConfig::Kind::email ? d->set_up_email(to, m, password)
                                                                : d->set_up_webhook(to, m);
    if (!ready) return ready.error();
    d->done_ = std::move(done);
    Delivery* self = d.get();
    if (CURLMcode rc = multi.add(d->easy_, [self](CURLcode r) { self->finish(r); }); rc != CURLM_OK)
        return make_error(ErrorCode::internal, multi.api().multi_strerror(rc));
    return d;
}

Result<void> Delivery::set_up_email(const config::NotifierConfig& to, const Message& m,
                                    const std::string& password) {
    const loop::CurlApi& c = curl_;
    c.easy_set<CURLOPT_PROTOCOLS_STR>(easy_, "smtp,smtps");
    // STARTTLS when the server offers it (smtp://); smtps:// is TLS from the start.
    c.easy_set<CURLOPT_USE_SSL>(easy_, static_cast<long>(CURLUSESSL_TRY));
    if (!to.user.empty()) {
        password_ = password;
        c.easy_set<CURLOPT_USERNAME>(easy_, to.user.c_str());
        c.easy_set<CURLOPT_PASSWORD>(easy_, password_.c_str());
    }
    c.easy_set<CURLOPT_MAIL_FROM>(easy_, angle(to.from).c_str());
    for (const std::string& r : to.to)
        recipients_ = c.slist_append(recipients_, angle(r).c_str());
    c.easy_set<CURLOPT_MAIL_RCPT>(easy_, recipients_);

    std::string host = to.from.substr(to.from.rfind('@') + 1);
    host.erase(std::remove_if(host.begin(), host.end(), [](char ch) { return ch == '>' || ch == ' '; }),
               host.end());
    std::string rcpts;
    for (const std::string& r : to.to)
        rcpts += (rcpts.empty() ? "" : ", ") + r;
    for (const std::string& h : {"Date: " + rfc5322_date(m.time_ms), "From: " + to.from, "To: " + rcpts,
                                 "Subject: " + header_text(subject_of(m)),
                                 "Message-ID: <" + m.id + "@" + (host.empty() ? "luaflow" : host) + ">",
                                 "X-Luaflow-Notification-Id: " + m.id})
        headers_ = c.slist_append(headers_, h.c_str());
    c.easy_set<CURLOPT_HTTPHEADER>(easy_, headers_);

    // The body: UTF-8 text, quoted-printable as curl encodes it.
    mime_ = c.mime_init(easy_);
    curl_mimepart* part = mime_ ? c.mime_addpart(mime_) : nullptr;
    if (!part) return make_error(ErrorCode::internal, "out of memory");
    // Lines end in CRLF on the wire (RFC 5322); curl's quoted-printable keeps those as line breaks.
    for (char ch : text_of(m)) {
        if (ch == '\n') body_ += '\r';
        body_ += ch;
    }
    c.mime_data(part, body_.data(), body_.size());
    c.mime_type(part, "text/plain; charset=utf-8");
    c.mime_encoder(part, "quoted-printable");
    c.easy_set<CURLOPT_MIMEPOST>(easy_, mime_);
    return {};
}

Result<void> Delivery::set_up_webhook(const config::NotifierConfig& to, const Message& m) {
    const loop::CurlApi& c = curl_;
    webhook_ = true;
    WebhookRequest r = webhook_request(to.format, m);
    body_ = std::move(r.body);
    c.easy_set<CURLOPT_PROTOCOLS_STR>(easy_, "http,https");
    c.easy_set<CURLOPT_POST>(easy_, 1L);
    c.easy_set<CURLOPT_POSTFIELDSIZE_LARGE>(easy_, static_cast<curl_off_t>(body_.size()));
    c.easy_set<CURLOPT_POSTFIELDS>(easy_, body_.data());
    c.easy_set<CURLOPT_USERAGENT>(easy_, kUserAgent.c_str());
    headers_ = c.slist_append(headers_, ("Content-Type: " + r.content_type).c_str());
    headers_ = c.slist_append(headers_, "Expect:"); // no 100-continue round trip
    for (const std::string& h : r.headers)
        headers_ = c.slist_append(headers_, h.c_str());
    c.easy_set<CURLOPT_HTTPHEADER>(easy_, headers_);
    c.easy_set<CURLOPT_WRITEFUNCTION>(easy_, &Delivery::on_answer);
    c.easy_set<CURLOPT_WRITEDATA>(easy_, static_cast<void*>(this));
    return {};
}

std::size_t Delivery::on_answer(char* data, std::size_t size, std::size_t n, void* self) {
    auto* d = static_cast<Delivery*>(self);
    std::size_t bytes = size * n;
    if (d->answer_.size() < kMaxAnswer)
        d->answer_.append(data, std::min(bytes, kMaxAnswer - d->answer_.size()));
    return bytes;
}

void Delivery::finish(CURLcode rc) {
    Result<void> r;
    if (rc != CURLE_OK) {
        std::string why = error_[0] ? error_ : curl_.easy_strerror(rc);
        r = make_error(ErrorCode::unavailable, why);
    } else if (webhook_) {
        long status = 0;
        curl_.easy_info<CURLINFO_RESPONSE_CODE>(easy_, &status);
        if (status < 200 || status > 299) {
            std::string line = first_line(answer_);
            r = make_error(ErrorCode::unavailable,
                           "HTTP " + std::to_string(status) + (line.empty() ? "" : ": " + line));
        }
    }
    Done done = std::move(done_);
    done_ = nullptr;
    if (done) done(std::move(r)); // may destroy this
}

} // namespace luaflow::notifiers
