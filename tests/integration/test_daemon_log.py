"""The daemon's own log (stderr, or the journal): every failed end is a line; a workflow's successes are a
line at most once a second, which counts the successes not logged since the one before."""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import DaemonTest, main  # noqa: E402


class DaemonLogTest(DaemonTest):
    WORKFLOWS = {
        "hook.lua": "return workflow { actions = { a = { run = function(ctx) return { n = 1 } end } } }",
        "bad.lua": 'return workflow { actions = { a = { run = function() error("no disk") end } } }',
    }

    def success_lines(self):
        return re.findall(r"execution (\w+) of hook succeeded(?: \(and (\d+) more since the last such line\))?\n",
                          self.d.log_text())

    def test_successes_are_throttled_and_counted_failures_are_all_logged(self):
        t0 = time.monotonic()
        runs = 300
        for _ in range(runs):
            self.assertEqual(self.d.call("run", {"workflow": "hook", "wait": True})["status"], "succeeded")
        elapsed = time.monotonic() - t0
        # One more after a quiet second: its line counts every success since the previous line.
        time.sleep(1.1)
        last = self.d.call("run", {"workflow": "hook", "wait": True})["id"]
        lines = self.success_lines()
        self.assertLessEqual(len(lines), elapsed + 3, lines)
        self.assertLess(len(lines), runs // 10, lines)
        self.assertEqual(lines[-1][0], last)
        self.assertEqual(sum(1 + int(more or 0) for _, more in lines), runs + 1, lines)
        for _ in range(3):
            self.assertEqual(self.d.call("run", {"workflow": "bad", "wait": True})["status"], "failed")
        log = self.d.log_text()
        self.assertEqual(len(re.findall(r"execution \w+ of bad failed: action 'a' failed\n", log)), 3, log[-2000:])
        self.assertEqual(len(re.findall(r"action 'a' attempt 1/1 failed: .*no disk\n", log)), 3, log[-2000:])


if __name__ == "__main__":
    main()
