#pragma once
// The daemon's log lines into the journal with fields of their own (issue 19): under systemd, when
// stderr is the journal's stream (JOURNAL_STREAM names its device and inode), each line goes through
// libsystemd's sd_journal_sendv with PRIORITY=, SYSLOG_IDENTIFIER=luaflowd and, for lines about one,
// LUAFLOW_WORKFLOW=, LUAFLOW_EXECUTION= and LUAFLOW_ACTION=, so that `journalctl LUAFLOW_WORKFLOW=backup`
// shows one workflow's story. libsystemd is loaded only then (common/shared_library.hpp); a line the
// journal refuses goes to stderr as before.
namespace luaflow::journal {

// Installs the sink when stderr is the journal's stream and libsystemd loads; whether it did.
bool start();

} // namespace luaflow::journal
