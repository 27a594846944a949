#pragma once
// Service-manager notifications (READY=1, RELOADING=1, STOPPING=1, WATCHDOG=1) through libsystemd's
// sd_notify. libsystemd and the libraries it pulls in cost about 1 MiB resident, so it is loaded only
// when systemd asked for notifications ($NOTIFY_SOCKET set); otherwise these calls do nothing.
#include <cstdint>

namespace luaflow::service {

void notify(const char* state);
// The watchdog interval systemd expects pings within, in microseconds; 0 when there is no watchdog.
std::uint64_t watchdog_usec();
// sd_booted(): the machine runs systemd, so transient scopes (systemd-run --scope) are there. Loads
// libsystemd on the first call, whatever $NOTIFY_SOCKET says.
bool systemd_booted();

} // namespace luaflow::service
