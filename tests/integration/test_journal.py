"""Issue 19: under systemd (JOURNAL_STREAM naming the daemon's stderr) each log line goes to the journal
through libsystemd's sd_journal_sendv, with PRIORITY=, SYSLOG_IDENTIFIER=luaflowd and, for the lines about
one, LUAFLOW_WORKFLOW=, LUAFLOW_EXECUTION=, LUAFLOW_ACTION=. Where no journald runs (a container), the
test plays its socket itself: a datagram socket at /run/systemd/journal/socket reading the native protocol
(KEY=VALUE lines) that libsystemd writes."""
import os
import socket
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Daemon, main, missing_peer, wait_for  # noqa: E402

JOURNAL_SOCKET = "/run/systemd/journal/socket"


def parse(datagram):
    """The fields of one native-protocol entry (values without newlines: KEY=VALUE lines)."""
    fields = {}
    for line in datagram.decode("utf-8", "replace").split("\n"):
        if "=" in line:
            k, v = line.split("=", 1)
            fields[k] = v
    return fields


class JournalTest(unittest.TestCase):
    def setUp(self):
        if os.path.exists(JOURNAL_SOCKET):
            missing_peer(f"{JOURNAL_SOCKET} belongs to a running journald; this test plays its own")
        if os.geteuid() != 0:
            missing_peer(f"making {JOURNAL_SOCKET} needs root")
        self.made_dirs = [d for d in ("/run/systemd", "/run/systemd/journal") if not os.path.isdir(d)]
        os.makedirs("/run/systemd/journal", exist_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(JOURNAL_SOCKET)
        self.sock.settimeout(0.05)
        self.entries = []

    def tearDown(self):
        self.sock.close()
        os.unlink(JOURNAL_SOCKET)
        for d in reversed(self.made_dirs):
            os.rmdir(d)

    def receive(self):
        try:
            while True:
                self.entries.append(parse(self.sock.recv(65536)))
        except socket.timeout:
            pass
        return self.entries

    def test_lines_carry_the_workflow_execution_and_action(self):
        d = Daemon({"backup.lua": 'return workflow { actions = { a = { shell = "exit 3", retries = 1, '
                                  'retry_delay = "10ms" } } }'})
        try:
            # The daemon's stderr is its log file: JOURNAL_STREAM names that file, as systemd names its stream.
            open(d.log, "a").close()
            st = os.stat(d.log)
            d.start(env={"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
            exec_id = d.ctl_json("run", "backup", "--wait", expect_rc=1)["id"]

            def ended():
                return any(e.get("LUAFLOW_EXECUTION") == exec_id and "failed" in e.get("MESSAGE", "")
                           and "action" not in e for e in self.receive())
            wait_for(ended, what="the execution's end in the journal")
            mine = [e for e in self.entries if e.get("LUAFLOW_WORKFLOW") == "backup"]
            self.assertTrue(all(e["SYSLOG_IDENTIFIER"] == "luaflowd" for e in self.entries))
            retrying = [e for e in mine if "retrying" in e["MESSAGE"]]
            self.assertEqual(len(retrying), 1, mine)
            self.assertEqual((retrying[0]["LUAFLOW_EXECUTION"], retrying[0]["LUAFLOW_ACTION"]), (exec_id, "a"))
            self.assertEqual(retrying[0]["PRIORITY"], "6")
            end = [e for e in mine if e["MESSAGE"].startswith(f"execution {exec_id} of backup failed")]
            self.assertEqual(len(end), 1, mine)
            self.assertNotIn("LUAFLOW_ACTION", end[0])
            # Lines about no workflow carry none; none of these went to stderr as well.
            self.assertTrue(any("LUAFLOW_WORKFLOW" not in e and "listening on" in e["MESSAGE"] for e in self.entries))
            self.assertNotIn("retrying", d.log_text())
        finally:
            d.stop()
            d.cleanup()

    def test_a_redirected_stderr_keeps_plain_lines(self):
        # JOURNAL_STREAM names another stream than stderr: the lines stay on stderr.
        d = Daemon({"w.lua": "return workflow { actions = { a = { run = function() return 1 end } } }"})
        try:
            d.start(env={"JOURNAL_STREAM": "1:1"})
            d.ctl_json("run", "w", "--wait")
            self.assertEqual(self.receive(), [])
            self.assertIn("execution", d.log_text())
        finally:
            d.stop()
            d.cleanup()


if __name__ == "__main__":
    main()
