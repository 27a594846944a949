"""Hot reload (SPEC 5): a good edit takes effect within 1 s; a broken one never replaces the last good
version and shows in the log, list and status; running executions finish with their definition."""
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import DaemonTest, wait_for  # noqa: E402

V1 = """
return workflow {
  actions = { a = { run = function(ctx) if ctx.input.slow then sleep(1) end; return "v1" end } },
}
"""
V2 = """
return workflow {
  actions = { a = { run = function() return "v2" end } },
}
"""
BROKEN = """
return workflow {
  actions = { a = { needs = { "nope" }, run = function() return "broken" end } },
}
"""


def entry(d, wid):
    return next((w for w in d.ctl_json("list") if w["id"] == wid), None)


class ReloadTest(DaemonTest):
    WORKFLOWS = {"w.lua": V1}

    def test_good_edit_within_one_second(self):
        self.assertEqual(self.run_wait("w")["actions"]["a"]["output"], "v1")
        slow = self.d.ctl_json("run", "w", "--input", '{"slow": true}')["id"]
        wait_for(lambda: self.d.ctl_json("inspect", slow)["actions"]["a"]["status"] == "running")
        self.d.write("w.lua", V2)
        t0 = time.monotonic()
        wait_for(lambda: self.run_wait("w")["actions"]["a"]["output"] == "v2", timeout=1.5, interval=0.05,
                 what="the new version to run")
        self.assertLess(time.monotonic() - t0, 1.5)
        # The execution that was running when the file changed finished with its own definition.
        wait_for(lambda: self.d.ctl_json("inspect", slow)["status"] == "succeeded", timeout=5)
        self.assertEqual(self.d.ctl_json("inspect", slow)["actions"]["a"]["output"], "v1")

    def test_broken_edit_keeps_last_good_version(self):
        self.d.write("w.lua", BROKEN)
        wait_for(lambda: entry(self.d, "w")["status"] == "error", timeout=1.5, what="the error in list")
        e = entry(self.d, "w")
        self.assertIn("w.lua:3:", e["error"])
        self.assertIn("needs unknown action 'nope'", e["error"])
        self.assertEqual(self.d.ctl_json("status")["workflow_errors"], 1)
        self.assertIn("needs unknown action 'nope'", self.d.log_text())
        self.assertEqual(self.run_wait("w")["actions"]["a"]["output"], "v1")
        # Fixing it clears the error.
        self.d.write("w.lua", V2)
        wait_for(lambda: entry(self.d, "w")["status"] == "ok", timeout=1.5)
        self.assertEqual(self.d.ctl_json("status")["workflow_errors"], 0)

    def test_reload_command_and_sighup(self):
        self.d.write("x.lua", V2)
        r = self.d.ctl_json("reload")
        self.assertEqual(r["errors"], [])
        self.assertEqual(r["workflows"], 2)
        self.d.write("y.lua", V2)
        self.d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: entry(self.d, "y") is not None, timeout=2)

    def test_lib_change_reloads_its_users(self):
        self.d.write("lib/word.lua", "return { value = 'first' }")
        self.d.write("uses.lua", """
            local word = require("lib.word")
            return workflow { actions = { a = { run = function() return word.value end } } }
        """)
        wait_for(lambda: entry(self.d, "uses") is not None, timeout=1.5)
        self.assertEqual(self.run_wait("uses")["actions"]["a"]["output"], "first")
        self.d.write("lib/word.lua", "return { value = 'second' }")
        wait_for(lambda: self.run_wait("uses")["actions"]["a"]["output"] == "second", timeout=1.5, interval=0.05,
                 what="the workflow to see the new module")

    def test_removed_file_disappears(self):
        os.remove(os.path.join(self.d.workflows, "w.lua"))
        wait_for(lambda: entry(self.d, "w") is None, timeout=1.5)
        rc, _, err = self.d.ctl("run", "w")
        self.assertEqual(rc, 1)
        self.assertIn("no workflow 'w'", err)


if __name__ == "__main__":
    unittest.main()
