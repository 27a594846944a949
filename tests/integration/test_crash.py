"""kill -9 at random moments under load, then restart: every acknowledged execution is there and
finishes, no succeeded action ran twice, and no acknowledged log line is lost (STYLE 2.11)."""
import json
import os
import random
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Daemon, wait_for  # noqa: E402

WORK = """
return workflow {
  concurrency = 50,
  actions = {
    a = { retries = 2, run = function(ctx) log.info("ran a"); sleep(0.01 * (ctx.input.n %% 5)); return ctx.input.n end },
    b = { needs = { "a" }, retries = 2, run = function(ctx) log.info("ran b"); sleep(0.02); return ctx.outputs.a + 1 end },
    c = { needs = { "b" }, retries = 2, shell = "echo ran c; sleep 0.0%d" },
  },
}
"""


def submit_until_killed(path, acknowledged, stop):
    """Pipelines runs and records each id the daemon acknowledged, until the daemon dies."""
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        buf = b""
        n = 0
        while not stop.is_set() and n < 400:
            for _ in range(20):
                s.sendall(json.dumps({"id": n, "method": "run", "params": {"workflow": "work", "input": {"n": n}}}).encode() + b"\n")
                n += 1
            got = 0
            while got < 20:
                chunk = s.recv(65536)
                if not chunk:
                    return
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    reply = json.loads(line)
                    if "result" in reply:
                        acknowledged.append(reply["result"]["id"])
                    got += 1
    except OSError:
        return


class CrashTest(unittest.TestCase):
    def test_random_kill9_loses_nothing(self):
        rng = random.Random(int(os.environ.get("LUAFLOW_CRASH_SEED", "7")))
        d = Daemon({"work.lua": WORK % 5})
        try:
            acknowledged = []
            log_snapshots = {}
            for cycle in range(3):
                d.start()
                stop = threading.Event()
                t = threading.Thread(target=submit_until_killed, args=(d.socket, acknowledged, stop))
                t.start()
                time.sleep(rng.uniform(0.2, 0.8))
                # What was acknowledged of some finished executions' logs must survive the crash.
                for run_id in acknowledged[:: max(1, len(acknowledged) // 10)]:
                    if run_id not in log_snapshots:
                        rep = d.call("inspect", {"execution": run_id})
                        if rep["status"] == "succeeded":
                            log_snapshots[run_id] = d.call("logs", {"execution": run_id})
                d.kill9()
                stop.set()
                t.join(timeout=10)
            d.start()
            self.assertGreater(len(acknowledged), 50)

            def all_done():
                st = d.call("status")
                return st["running"] == 0 and st["queued"] == 0
            wait_for(all_done, timeout=120, interval=0.2, what="every execution to finish")
            for run_id in acknowledged:
                rep = d.call("inspect", {"execution": run_id})
                self.assertEqual(rep["status"], "succeeded", json.dumps(rep))
                n = rep["input"]["n"]
                self.assertEqual(rep["actions"]["a"]["output"], n)
                self.assertEqual(rep["actions"]["b"]["output"], n + 1)
                logs = d.call("logs", {"execution": run_id})
                for action, line in (("a", "ran a"), ("b", "ran b"), ("c", "ran c")):
                    runs = sum(1 for l in logs if l["action"] == action and l["line"] == line)
                    # One run per attempt at most: an interrupted attempt may have logged before dying.
                    self.assertGreaterEqual(runs, 1)
                    self.assertLessEqual(runs, rep["actions"][action]["attempts"])
                if run_id in log_snapshots:
                    self.assertEqual(logs[:len(log_snapshots[run_id])], log_snapshots[run_id])
            self.assertEqual(d.stop(), 0)
        finally:
            d.cleanup()


if __name__ == "__main__":
    unittest.main()
