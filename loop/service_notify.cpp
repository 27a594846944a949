#include "loop/service_notify.hpp"

#include "common/log.hpp"
#include "common/shared_library.hpp"

#include <systemd/sd-daemon.h>

#include <cstdlib>

namespace luaflow::service {

namespace {

struct Libsystemd {
    decltype(&sd_notify) notify = nullptr;
    decltype(&sd_watchdog_enabled) watchdog_enabled = nullptr;
};

const Libsystemd& lib() {
    static const Libsystemd loaded = [] {
        Libsystemd l;
        if (!std::getenv("NOTIFY_SOCKET")) return l;
        auto h = SharedLibrary::open("libsystemd.so.0");
        if (h) {
            h->resolve("sd_notify", l.notify);
            h->resolve("sd_watchdog_enabled", l.watchdog_enabled);
        }
        if (auto found = h ? h->done() : Result<void>(h.error()); !found) {
            log::warn("NOTIFY_SOCKET is set but %s", found.error().message.c_str());
            return Libsystemd{};
        }
        return l;
    }();
    return loaded;
}

} // namespace

void notify(const char* state) {
    if (auto fn = lib().notify) fn(0, state);
}

std::uint64_t watchdog_usec() {
    std::uint64_t usec = 0;
    if (auto fn = lib().watchdog_enabled; fn && fn(0, &usec) > 0) return usec;
    return 0;
}

bool systemd_booted() {
    static const bool booted = [] {
        auto h = SharedLibrary::open("libsystemd.so.0");
        if (!h) return false;
        decltype(&sd_booted) fn = nullptr;
        h->resolve("sd_booted", fn);
        return fn && fn() > 0;
    }();
    return booted;
}

} // namespace luaflow::service
