"""systemd notifications (luaflowd(8) SYSTEMD): with NOTIFY_SOCKET set, READY=1 once the socket answers,
WATCHDOG=1 again and again at half of WATCHDOG_USEC, RELOADING=1 then READY=1 around a reload, STOPPING=1
at stop; a watchdog meant for another process (WATCHDOG_PID) is not pinged. The test is the service
manager: it listens on the unix datagram socket it names in NOTIFY_SOCKET."""
import os
import signal
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Daemon, wait_for  # noqa: E402


class NotifySocket:
    """A unix datagram socket and a thread that records each message with its arrival time."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.messages = []  # (monotonic seconds, "READY=1")
        self.lock = threading.Lock()
        self.closed = False
        self.thread = threading.Thread(target=self._receive, daemon=True)
        self.thread.start()

    def _receive(self):
        while not self.closed:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            now = time.monotonic()
            with self.lock:
                for line in data.decode().split("\n"):
                    if line:
                        self.messages.append((now, line))

    def seen(self, message):
        """The arrival times of `message`, oldest first."""
        with self.lock:
            return [t for t, m in self.messages if m == message]

    def all(self):
        with self.lock:
            return [m for _, m in self.messages]

    def close(self):
        self.closed = True
        self.thread.join(timeout=5)
        self.sock.close()


class ServiceNotifyTest(unittest.TestCase):
    def setUp(self):
        self.d = Daemon()
        self.notify = NotifySocket(self.d.dir)

    def tearDown(self):
        self.d.cleanup()
        self.notify.close()

    def test_ready_watchdog_pings_reload_and_stopping(self):
        watchdog_usec = 400_000  # pings every 200 ms
        self.d.start(env={"NOTIFY_SOCKET": self.notify.path, "WATCHDOG_USEC": str(watchdog_usec)})
        wait_for(lambda: self.notify.seen("READY=1"), what="READY=1")
        self.assertEqual(self.notify.all()[0], "READY=1")  # nothing before it

        pings = wait_for(lambda: (p := self.notify.seen("WATCHDOG=1")) and len(p) >= 10 and p, timeout=15,
                         what="ten WATCHDOG=1 pings")
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        average = (pings[-1] - pings[0]) / len(gaps)
        # Half of WATCHDOG_USEC is 0.2 s: generous bounds for a loaded machine, yet neither "once" nor
        # "at the full interval" passes.
        self.assertGreater(average, 0.1, gaps)
        self.assertLess(average, 0.35, gaps)
        self.assertLess(max(gaps), 1.0, gaps)
        self.assertTrue(all(t > self.notify.seen("READY=1")[0] for t in pings))

        self.d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: len(self.notify.seen("READY=1")) == 2, what="READY=1 after the reload")
        messages = [m for m in self.notify.all() if m != "WATCHDOG=1"]
        self.assertEqual(messages, ["READY=1", "RELOADING=1", "READY=1"])

        self.assertEqual(self.d.stop(), 0)
        wait_for(lambda: self.notify.seen("STOPPING=1"), what="STOPPING=1")

    def test_a_watchdog_for_another_process_is_not_pinged(self):
        # systemd sets WATCHDOG_PID to the process it watches; this one is not it.
        self.d.start(env={"NOTIFY_SOCKET": self.notify.path, "WATCHDOG_USEC": "200000",
                          "WATCHDOG_PID": str(os.getpid())})
        wait_for(lambda: self.notify.seen("READY=1"), what="READY=1")
        time.sleep(0.5)  # nothing to wait for: five pings at 100 ms would have come by now
        self.assertEqual(self.notify.seen("WATCHDOG=1"), [])
        self.assertEqual(self.d.stop(), 0)
        wait_for(lambda: self.notify.seen("STOPPING=1"), what="STOPPING=1")


if __name__ == "__main__":
    unittest.main(verbosity=2)
