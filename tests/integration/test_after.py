"""`after` triggers (SPEC 4, issue 17): a workflow starts when an execution of the one it names ends with a
matching status, with that execution's report as its input, in the transaction that writes the end (so a
kill -9 right after loses neither); a loop of `after` triggers is a load error naming the loop."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import Daemon, wait_for  # noqa: E402

BUILD = """
return workflow {
  input = { fail = { type = "boolean", default = false }, seconds = { type = "number", default = 0 } },
  actions = { go = { timeout = "30s", run = function(ctx)
    sleep(ctx.input.seconds)
    if ctx.input.fail then error("the build broke") end
    return { artifact = "app-1.2" }
  end } },
}
"""


def follower(on, extra=""):
    return f"""
return workflow {{
  triggers = {{ manual = false, after = {{ workflow = "build"{', on = "' + on + '"' if on else ''} }} }},
  {extra}
  actions = {{ note = {{ run = function(ctx)
    return {{ after = ctx.input.id, status = ctx.input.status, output = ctx.input.actions.go.output,
             error = ctx.input.actions.go.error }}
  end }} }},
}}
"""


# Declares a required input the report has: typed inputs hold for `after` runs too.
TYPED = follower("any", 'input = { status = { type = "string", required = true } },')

SLOW = """
return workflow {
  triggers = { after = { workflow = "build" } },
  actions = { wait = { retries = 1, run = function(ctx) sleep(1.5); return ctx.input.id end } },
}
"""


def runs(d, workflow):
    return d.ctl_json("executions", "--workflow", workflow)


def settled(d, workflow, count):
    wait_for(lambda: len(runs(d, workflow)) == count and all(
        e["status"] not in ("queued", "running") for e in runs(d, workflow)), timeout=15,
        what=f"{count} finished execution(s) of {workflow}")
    return runs(d, workflow)


class AfterTest(unittest.TestCase):
    def setUp(self):
        self.d = Daemon({"build.lua": BUILD, "deploy.lua": follower(None), "alert.lua": follower("failure"),
                         "audit.lua": follower("any"), "typed.lua": TYPED}).start()

    def tearDown(self):
        harness.finish(self.d)

    def test_success_starts_success_and_any_with_the_report_as_input(self):
        build = self.d.ctl_json("run", "build", "--wait")
        self.assertEqual(build["status"], "succeeded")
        for wf in ("deploy", "audit", "typed"):
            [e] = settled(self.d, wf, 1)
            doc = self.d.ctl_json("inspect", e["id"])
            self.assertEqual(doc["status"], "succeeded", wf)
            self.assertEqual(doc["trigger"], {"type": "after", "workflow": "build", "execution": build["id"],
                                              "status": "succeeded"})
            self.assertEqual(doc["input"]["id"], build["id"])
            self.assertEqual(doc["actions"]["note"]["output"],
                             {"after": build["id"], "status": "succeeded", "output": {"artifact": "app-1.2"}})
        self.assertEqual(runs(self.d, "alert"), [])

    def test_failure_starts_failure_and_any(self):
        build = self.d.ctl_json("run", "build", "-i", "fail=true", "--wait", expect_rc=1)
        self.assertEqual(build["status"], "failed")
        for wf in ("alert", "audit"):
            [e] = settled(self.d, wf, 1)
            out = self.d.ctl_json("inspect", e["id"])["actions"]["note"]["output"]
            self.assertEqual(out["status"], "failed")
            self.assertIn("the build broke", out["error"])
        self.assertEqual(runs(self.d, "deploy"), [])

    def test_a_cancel_starts_any_only(self):
        build = self.d.ctl_json("run", "build", "-i", "seconds=10")["id"]
        wait_for(lambda: self.d.ctl_json("inspect", build)["actions"]["go"]["status"] == "running",
                 what="the build to run")
        self.d.ctl_json("cancel", build)
        [e] = settled(self.d, "audit", 1)
        self.assertEqual(self.d.ctl_json("inspect", e["id"])["trigger"]["status"], "cancelled")
        self.assertEqual(runs(self.d, "deploy"), [])
        self.assertEqual(runs(self.d, "alert"), [])

    def test_manual_false_still_refuses_a_manual_run(self):
        rc, _, err = self.d.ctl("run", "deploy")
        self.assertNotEqual(rc, 0)
        self.assertIn("manual", err)


class AfterAcrossKillTest(unittest.TestCase):
    def test_the_follower_is_in_the_store_with_the_end_it_follows(self):
        d = Daemon({"build.lua": BUILD, "slow.lua": SLOW})
        try:
            d.start()
            build = d.ctl_json("run", "build", "--wait")
            # The answer comes after the commit that ended `build`; the follower was written in it.
            d.kill9()
            d.start()
            [e] = settled(d, "slow", 1)
            doc = d.ctl_json("inspect", e["id"])
            self.assertEqual(doc["trigger"]["execution"], build["id"])
            self.assertEqual(doc["status"], "succeeded")
            self.assertEqual(doc["actions"]["wait"]["output"], build["id"])
            self.assertEqual(len(runs(d, "build")), 1)
        finally:
            harness.finish(d)


class AfterDuringShutdownTest(unittest.TestCase):
    def test_an_end_within_the_shutdown_grace_leaves_the_follower_queued_for_the_next_start(self):
        d = Daemon({"build.lua": BUILD, "deploy.lua": follower(None)}, grace="10s")
        try:
            d.start()
            build = d.ctl_json("run", "build", "-i", "seconds=1")["id"]
            wait_for(lambda: d.ctl_json("inspect", build)["actions"]["go"]["status"] == "running",
                     what="the build to run")
            d.stop()  # SIGTERM: the build ends within the grace, then the daemon exits
            self.assertIn("started after execution", d.log_text())
            d.start()
            [e] = settled(d, "deploy", 1)
            self.assertEqual(e["status"], "succeeded")
            self.assertEqual(d.ctl_json("inspect", e["id"])["trigger"]["execution"], build)
        finally:
            harness.finish(d)


LOOP_A = """
return workflow {
  triggers = { after = { workflow = "loop_b", on = "any" } },
  actions = { a = { run = function() return 1 end } },
}
"""
LOOP_B = """
return workflow {
  triggers = { after = { workflow = "loop_a" } },
  actions = { b = { run = function() return 1 end } },
}
"""
SELF = """
return workflow {
  triggers = { after = { workflow = "selfish" } },
  actions = { s = { run = function() return 1 end } },
}
"""


def entry(d, wid):
    return next(w for w in d.ctl_json("list") if w["id"] == wid)


class AfterLoopTest(unittest.TestCase):
    def test_a_loop_is_a_load_error_naming_it(self):
        d = Daemon({"loop_a.lua": LOOP_A, "loop_b.lua": LOOP_B, "selfish.lua": SELF})
        try:
            d.start()
            # loop_a loads first (loop_b is not there yet); loop_b would close the loop.
            self.assertNotEqual(entry(d, "loop_a")["status"], "error")
            b = entry(d, "loop_b")
            self.assertEqual(b["status"], "error")
            self.assertIn("loop_b.lua:3:", b["error"])
            self.assertIn("a loop of `after` triggers: loop_b -> loop_a -> loop_b", b["error"])
            self.assertIn("selfish -> selfish", entry(d, "selfish")["error"])
            # Running loop_a starts nothing: loop_b never loaded.
            self.assertEqual(d.ctl_json("run", "loop_a", "--wait")["status"], "succeeded")
            self.assertEqual(runs(d, "loop_b"), [])
            # Breaking the loop loads loop_b; then loop_a's end starts it.
            d.write("loop_a.lua", LOOP_A.replace('triggers = { after = { workflow = "loop_b", on = "any" } },', ""))
            wait_for(lambda: entry(d, "loop_b")["status"] != "error", timeout=5, what="loop_b to load")
            d.ctl_json("run", "loop_a", "--wait")
            self.assertEqual(len(settled(d, "loop_b", 1)), 1)
        finally:
            harness.finish(d)


if __name__ == "__main__":
    harness.main()
