"""systemd notifications: READY=1 once the socket answers, RELOADING=1/READY=1 around a reload and
STOPPING=1 at stop, sent to $NOTIFY_SOCKET through libsystemd's sd_notify."""
import os
import signal
import socket
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import LUAFLOWD, Daemon, wait_for  # noqa: E402


class NotifyTest(unittest.TestCase):
    def test_ready_reloading_stopping(self):
        d = Daemon({"w.lua": "return workflow { actions = { a = { run = function() return 1 end } } }"})
        try:
            path = os.path.join(d.dir, "notify.sock")
            sink = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sink.bind(path)
            sink.settimeout(10)
            env = dict(os.environ, NOTIFY_SOCKET=path)
            with open(d.log, "a") as logf:
                d.proc = subprocess.Popen([LUAFLOWD, "-c", d.config, "-w", d.workflows, "-s", d.state,
                                           "--socket", d.socket], env=env, stdout=logf, stderr=logf)
            self.assertEqual(sink.recv(4096), b"READY=1")
            self.assertEqual(d.ctl("status")[0], 0, "READY=1 came before the socket answered")
            d.proc.send_signal(signal.SIGHUP)
            self.assertEqual(sink.recv(4096), b"RELOADING=1")
            self.assertEqual(sink.recv(4096), b"READY=1")
            d.proc.send_signal(signal.SIGTERM)
            self.assertEqual(sink.recv(4096), b"STOPPING=1")
            self.assertEqual(d.proc.wait(timeout=10), 0)
        finally:
            d.cleanup()

    def test_journal_priority_prefixes(self):
        d = Daemon({})
        try:
            env = dict(os.environ, JOURNAL_STREAM="8:12345")
            with open(d.log, "a") as logf:
                d.proc = subprocess.Popen([LUAFLOWD, "-c", d.config, "-w", d.workflows, "-s", d.state,
                                           "--socket", d.socket], env=env, stdout=logf, stderr=logf)
            wait_for(lambda: d.ctl("status")[0] == 0, timeout=10)
            self.assertEqual(d.stop(), 0)
            lines = d.log_text().splitlines()
            self.assertTrue(lines)
            for line in lines:
                self.assertRegex(line, r"^<[0-7]>[^<]")
        finally:
            d.cleanup()


if __name__ == "__main__":
    unittest.main()
