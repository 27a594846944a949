#pragma once
// One attempt to deliver a message through a notifier: an SMTP or HTTP transfer on the loop's libcurl
// multi (loop/curl_multi.hpp), so that a slow or dead receiver never holds the loop. It ends with the
// transport's own words on failure: curl's error ("Login denied", "RCPT failed: 550"), or a webhook's
// non-2xx status with the start of its answer.
#include "common/result.hpp"
#include "daemon/config/config.hpp"
#include "loop/curl_multi.hpp"
#include "notifiers/message.hpp"

#include <functional>
#include <memory>
#include <string>

namespace luaflow::notifiers {

// How long one attempt may take, connecting included.
inline constexpr long kDeliveryTimeoutMs = 30'000;
inline constexpr long kConnectTimeoutMs = 10'000;

class Delivery {
  public:
    using Done = std::function<void(Result<void>)>;
    // Starts the transfer; `done` is called once, from a later loop callback, unless the delivery is
    // destroyed first (which cancels it). `password` is the e-mail notifier's, read by the caller. An
    // error (and no callback) when the transfer cannot even start.
    static Result<std::unique_ptr<Delivery>> start(loop::CurlMulti& multi, const config::NotifierConfig& to,
                                                   const Message& m, const std::string& password, Done done);
    ~Delivery();
    Delivery(const Delivery&) = delete;
    Delivery& operator=(const Delivery&) = delete;

  private:
    explicit Delivery(loop::CurlMulti& multi);
    Result<void> set_up_email(const config::NotifierConfig& to, const Message& m,
                              const std::string& password);
    Result<void> set_up_webhook(const config::NotifierConfig& to, const Message& m);
    void finish(CURLcode rc);
    static std::size_t on_answer(char* data, std::size_t size, std::size_t n, void* self);

    loop::CurlMulti& multi_;
    const loop::CurlApi& curl_;
    CURL* easy_ = nullptr;
    curl_slist* headers_ = nullptr;
    curl_slist* recipients_ = nullptr;
    curl_mime* mime_ = nullptr;
    std::string body_, answer_, password_;
    bool webhook_ = false;
    char error_[CURL_ERROR_SIZE] = {};
    Done done_;
};

} // namespace luaflow::notifiers
