#include "loop/journal.hpp"

#include "common/log.hpp"
#include "common/shared_library.hpp"

#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace luaflow::journal {

namespace {

decltype(&sd_journal_sendv) send = nullptr;

// JOURNAL_STREAM is "DEVICE:INODE" of the stream systemd connected; stderr may have been redirected
// since (a service's own shell wrapper), and then the journal is not where its lines go.
bool stderr_is_journal() {
    const char* stream = std::getenv("JOURNAL_STREAM");
    unsigned long long dev = 0, ino = 0;
    if (!stream || std::sscanf(stream, "%llu:%llu", &dev, &ino) != 2) return false;
    struct stat st {};
    return ::fstat(STDERR_FILENO, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

bool to_journal(log::Level level, const std::string& line, const log::About& about) {
    std::string fields[6];
    int n = 0;
    fields[n++] = "MESSAGE=" + line;
    fields[n++] = "PRIORITY=" + std::to_string(static_cast<int>(level));
    fields[n++] = "SYSLOG_IDENTIFIER=luaflowd";
    if (!about.workflow.empty()) fields[n++] = "LUAFLOW_WORKFLOW=" + std::string(about.workflow);
    if (!about.execution.empty()) fields[n++] = "LUAFLOW_EXECUTION=" + std::string(about.execution);
    if (!about.action.empty()) fields[n++] = "LUAFLOW_ACTION=" + std::string(about.action);
    iovec iov[6];
    for (int i = 0; i < n; ++i)
        iov[i] = {fields[i].data(), fields[i].size()};
    return send(iov, n) >= 0;
}

} // namespace

bool start() {
    if (!stderr_is_journal()) return false;
    auto lib = SharedLibrary::open("libsystemd.so.0");
    if (lib) lib->resolve("sd_journal_sendv", send);
    if (auto found = lib ? lib->done() : Result<void>(lib.error()); !found) {
        log::warn("journal fields off: %s", found.error().message.c_str());
        return false;
    }
    log::set_sink(&to_journal);
    return true;
}

} // namespace luaflow::journal
