"""workflows.run (issue 5): a child execution with wait returns its report; the parent action does not
finish before its children, also across a kill -9 and restart, where a retried parent waits on the same
child instead of starting another."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import Daemon, wait_for  # noqa: E402

CHILD = """
return workflow {
  input = { seconds = { type = "number", default = 0 } },
  actions = { work = { retries = 1, run = function(ctx)
    kv.incr("child runs")
    sleep(ctx.input.seconds)
    return { slept = ctx.input.seconds }
  end } },
}
"""

PARENT = """
return workflow {
  input = { seconds = { type = "number", default = 0 } },
  actions = { call = { retries = 1, timeout = "60s", run = function(ctx)
    local report = workflows.run("child", { seconds = ctx.input.seconds }, { wait = true })
    return { child = report.id, status = report.status, output = report.actions.work.output }
  end } },
}
"""

NO_RETRY = """
return workflow {
  actions = { call = { timeout = "60s", run = function()
    return workflows.run("child", { seconds = 3 }, { wait = true }).status
  end } },
}
"""


def child_ids(d, parent):
    return [c["id"] for c in d.ctl_json("inspect", parent)["actions"]["call"].get("children", [])]


class ChildrenTest(unittest.TestCase):
    def setUp(self):
        self.d = Daemon({"child.lua": CHILD, "parent.lua": PARENT, "no-retry.lua": NO_RETRY}).start()

    def tearDown(self):
        harness.finish(self.d)

    def test_wait_returns_the_report_and_inspect_links_both_ways(self):
        report = self.d.ctl_json("run", "parent", "--wait")
        self.assertEqual(report["status"], "succeeded")
        out = report["actions"]["call"]["output"]
        self.assertEqual(out["status"], "succeeded")
        self.assertEqual(out["output"], {"slept": 0})
        child = self.d.ctl_json("inspect", out["child"])
        self.assertEqual(child["parent"], report["id"])
        self.assertEqual(child["trigger"]["type"], "child")
        self.assertEqual(report["actions"]["call"]["children"],
                         [{"id": out["child"], "workflow": "child", "status": "succeeded"}])
        rc, text, _ = self.d.ctl("inspect", out["child"])
        self.assertEqual(rc, 0)
        self.assertIn(report["id"], text)

    def _kill_while_child_runs(self, workflow, *args):
        parent = self.d.ctl_json("run", workflow, *args)["id"]
        wait_for(lambda: child_ids(self.d, parent), what="the child to start")
        child = child_ids(self.d, parent)[0]
        wait_for(lambda: self.d.ctl_json("inspect", child)["actions"]["work"]["status"] == "running",
                 what="the child's action to run")
        self.d.kill9()
        self.d.start()
        return parent, child

    def test_a_retried_parent_waits_on_the_same_child_across_a_restart(self):
        parent, child = self._kill_while_child_runs("parent", "-i", "seconds=2")
        wait_for(lambda: self.d.ctl_json("inspect", parent)["status"] in ("succeeded", "failed"), timeout=30,
                 what="the parent to end")
        report = self.d.ctl_json("inspect", parent)
        self.assertEqual(report["status"], "succeeded", report)
        self.assertEqual(report["actions"]["call"]["attempts"], 2)
        self.assertEqual(report["actions"]["call"]["output"]["child"], child)
        self.assertEqual(report["actions"]["call"]["output"]["status"], "succeeded")
        self.assertEqual(child_ids(self.d, parent), [child], "one child, not a second one")
        logs = self.d.ctl_json("logs", parent)
        self.assertTrue(any("waiting on it instead of starting another" in l["line"] for l in logs), logs)
        # The child itself was interrupted once and retried.
        self.assertEqual(self.d.ctl_json("inspect", child)["actions"]["work"]["attempts"], 2)

    def test_without_retries_the_parent_fails_only_after_its_child_has_ended(self):
        parent, child = self._kill_while_child_runs("no-retry")
        wait_for(lambda: self.d.ctl_json("inspect", parent)["status"] == "failed", timeout=30,
                 what="the parent to fail")
        report = self.d.ctl_json("inspect", parent)
        kid = self.d.ctl_json("inspect", child)
        self.assertEqual(kid["status"], "succeeded")
        self.assertEqual(report["actions"]["call"]["error"], "interrupted by daemon restart")
        self.assertGreaterEqual(harness.ms(report["actions"]["call"]["finished_at"]),
                                harness.ms(kid["finished_at"]))

    def test_cancelling_the_parent_cancels_the_child(self):
        parent = self.d.ctl_json("run", "parent", "-i", "seconds=30")["id"]
        wait_for(lambda: child_ids(self.d, parent), what="the child to start")
        child = child_ids(self.d, parent)[0]
        self.assertEqual(self.d.ctl_json("cancel", parent)["status"], "cancelled")
        wait_for(lambda: self.d.ctl_json("inspect", child)["status"] == "cancelled", what="the child to end")
        self.assertIn("its parent execution", self.d.ctl_json("inspect", child)["error"])


if __name__ == "__main__":
    unittest.main()
