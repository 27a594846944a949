"""kill -9 in the middle of a long action and a restart: nothing finished re-runs, nothing is lost;
an interrupted action is retried if it has retries left, else fails; queued executions start."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Daemon, wait_for  # noqa: E402

LONG = """
return workflow {
  concurrency = 1,
  actions = {
    first  = { run = function(ctx) log.info("first ran"); return { n = 1 } end },
    long   = { needs = { "first" }, retries = %(retries)d,
               run = function(ctx)
                 ctx.node.seen = (ctx.node.seen or 0) + 1
                 log.info("long attempt %%d", ctx.execution.attempt)
                 if ctx.execution.attempt == 1 then sleep(60) end
                 return { attempt = ctx.execution.attempt }
               end },
    last   = { needs = { "long" }, run = function(ctx) return { after = ctx.outputs.long.attempt } end },
  },
}
"""


class DurabilityTest(unittest.TestCase):
    def setUp(self):
        self.d = Daemon({"retrying.lua": LONG % {"retries": 1}, "oneshot.lua": LONG % {"retries": 0}})

    def tearDown(self):
        self.d.cleanup()

    def test_kill9_mid_action_and_restart(self):
        d = self.d.start()
        retrying = d.ctl_json("run", "retrying")["id"]
        oneshot = d.ctl_json("run", "oneshot")["id"]
        queued = d.ctl_json("run", "retrying")["id"]  # concurrency 1: waits behind the first
        for run_id in (retrying, oneshot):
            wait_for(lambda: d.ctl_json("inspect", run_id)["actions"]["long"]["status"] == "running",
                     what="the long action to run")
        self.assertEqual(d.ctl_json("inspect", queued)["status"], "queued")
        before = {i: d.ctl_json("inspect", i) for i in (retrying, oneshot)}
        logs_before = {i: d.ctl_json("logs", i) for i in (retrying, oneshot)}
        d.kill9()

        d.start()
        wait_for(lambda: d.ctl_json("inspect", retrying)["status"] == "succeeded", timeout=20,
                 what="the interrupted execution to finish")
        report = d.ctl_json("inspect", retrying)
        # finished before the crash: not run again, same output and times
        self.assertEqual(report["actions"]["first"], before[retrying]["actions"]["first"])
        self.assertEqual(report["actions"]["long"]["attempts"], 2)
        self.assertEqual(report["actions"]["long"]["output"], {"attempt": 2})
        self.assertEqual(report["actions"]["last"]["output"], {"after": 2})
        logs = d.ctl_json("logs", retrying)
        self.assertEqual(logs[:len(logs_before[retrying])], logs_before[retrying], "a log line was lost")
        self.assertEqual(sum(1 for l in logs if l["line"] == "first ran"), 1)
        self.assertTrue(any("interrupted by daemon restart" in l["line"] for l in logs))

        wait_for(lambda: d.ctl_json("inspect", oneshot)["status"] == "failed", timeout=20)
        report = d.ctl_json("inspect", oneshot)
        self.assertEqual(report["actions"]["long"]["status"], "failed")
        self.assertEqual(report["actions"]["long"]["error"], "interrupted by daemon restart")
        self.assertEqual(report["actions"]["last"]["status"], "skipped")

        # The queued execution started after the restart; its first attempt sleeps, so cancel it.
        wait_for(lambda: d.ctl_json("inspect", queued)["status"] == "running", timeout=20)
        d.ctl_json("cancel", queued)
        self.assertEqual(d.stop(), 0)

    def test_graceful_stop_leaves_running_actions_interrupted(self):
        d = self.d.start()
        run_id = d.ctl_json("run", "retrying")["id"]
        wait_for(lambda: d.ctl_json("inspect", run_id)["actions"]["long"]["status"] == "running")
        self.assertEqual(d.stop(), 0)  # shutdown_grace 5 s; the action sleeps 60 s
        d.start()
        wait_for(lambda: d.ctl_json("inspect", run_id)["status"] == "succeeded", timeout=20)
        self.assertEqual(d.ctl_json("inspect", run_id)["actions"]["long"]["attempts"], 2)
        self.assertEqual(d.stop(), 0)

    def test_failure_during_shutdown_grace_is_retried_at_next_start(self):
        d = self.d
        d.write("late.lua", """
            return workflow {
              actions = {
                a = { retries = 1, retry_delay = "100ms", run = function(ctx)
                        if ctx.execution.attempt == 1 then sleep(0.5); error("failed while stopping") end
                        return "second" end },
              },
            }
        """)
        d.start()
        run_id = d.ctl_json("run", "late")["id"]
        wait_for(lambda: d.ctl_json("inspect", run_id)["actions"]["a"]["status"] == "running")
        self.assertEqual(d.stop(), 0)
        d.start()
        wait_for(lambda: d.ctl_json("inspect", run_id)["status"] == "succeeded", timeout=10)
        report = d.ctl_json("inspect", run_id)
        self.assertEqual(report["actions"]["a"]["attempts"], 2)
        self.assertEqual(report["actions"]["a"]["output"], "second")
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main()
