#include "loop/service_notify.hpp"

#include "common/log.hpp"

#include <dlfcn.h>
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
        void* h = ::dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            log::warn("NOTIFY_SOCKET is set but libsystemd cannot be loaded: %s", ::dlerror());
            return l;
        }
        l.notify = reinterpret_cast<decltype(&sd_notify)>(::dlsym(h, "sd_notify"));
        l.watchdog_enabled =
            reinterpret_cast<decltype(&sd_watchdog_enabled)>(::dlsym(h, "sd_watchdog_enabled"));
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
        void* h = ::dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
        if (!h) return false;
        auto fn = reinterpret_cast<decltype(&sd_booted)>(::dlsym(h, "sd_booted"));
        return fn && fn() > 0;
    }();
    return booted;
}

} // namespace luaflow::service
