"""The inventory example end to end, DAG parallelism, groups, when/always, retries with backoff."""
import os
import shutil
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import DaemonTest, Daemon, SOURCE_DIR, ms, wait_for  # noqa: E402

DIAMOND = """
return workflow {
  concurrency = 4,
  actions = {
    top    = { run = function() return { v = 1 } end },
    left   = { needs = { "top" }, run = function(ctx) sleep(0.5); return { v = ctx.outputs.top.v + 1 } end },
    right  = { needs = { "top" }, run = function(ctx) sleep(0.5); return { v = ctx.outputs.top.v + 2 } end },
    bottom = { needs = { "left", "right" },
               run = function(ctx) return { v = ctx.outputs.left.v + ctx.outputs.right.v } end },
  },
}
"""

GROUPS = """
return workflow {
  actions = {
    a = { group = 1, run = function(ctx) ctx.shared.a = true; sleep(0.2); return 1 end },
    b = { group = 1, run = function(ctx) ctx.shared.b = true; sleep(0.2); return 2 end },
    c = { group = 2, run = function(ctx) return { saw_a = ctx.shared.a, saw_b = ctx.shared.b } end },
  },
}
"""

CHAIN = """
return workflow { actions = {
  a = { run = function() return 1 end },
  b = { needs = { "a" }, run = function(ctx) return ctx.outputs.a + 1 end },
  c = { needs = { "b" }, run = function(ctx) return ctx.outputs.b + 1 end },
} }
"""

FLAKY = """
return workflow {
  actions = {
    flaky = {
      retries = 3, retry_delay = "200ms",
      run = function(ctx)
        ctx.node.n = (ctx.node.n or 0) + 1
        if ctx.node.n < 4 then error("not yet " .. ctx.node.n) end
        return { tries = ctx.node.n, attempt = ctx.execution.attempt }
      end,
    },
  },
}
"""

SKIPS = """
return workflow {
  actions = {
    fails  = { run = function() error("boom") end },
    after  = { needs = { "fails" }, run = function() return 1 end },
    later  = { needs = { "after" }, run = function() return 2 end },
    always = { needs = { "later" }, always = true, run = function(ctx) return { later = ctx.outputs.later } end },
    never  = { when = function() return false end, run = function() return 3 end },
  },
}
"""


class EngineTest(DaemonTest):
    WORKFLOWS = {"diamond.lua": DIAMOND, "groups.lua": GROUPS, "flaky.lua": FLAKY, "skips.lua": SKIPS,
                 "chain.lua": CHAIN}

    def test_inventory_example_hot_drop_and_inspect(self):
        shutil.copy(os.path.join(SOURCE_DIR, "workflows", "inventory-reorder.lua"), self.d.workflows)
        t0 = time.monotonic()
        wait_for(lambda: any(w["id"] == "inventory-reorder" for w in self.d.ctl_json("list")), timeout=1.5,
                 what="the dropped workflow in list")
        self.assertLess(time.monotonic() - t0, 1.5)
        report = self.run_wait("inventory-reorder", "--input", '{"stock": {"apples": 3, "pears": 40, "figs": 1}}')
        self.assertEqual(report["status"], "succeeded")
        acts = report["actions"]
        self.assertEqual(acts["check"]["output"], {"low": ["apples", "figs"]})
        self.assertEqual(acts["reorder"]["output"], {"orders": 2})
        self.assertEqual(acts["report"]["output"], {"exit_code": 0})
        self.assertEqual(report["shared"], {"threshold": 10, "ordered": ["apples", "figs"]})
        for name in ("check", "reorder", "report"):
            self.assertEqual(acts[name]["status"], "succeeded")
            self.assertEqual(acts[name]["attempts"], 1)
            self.assertIsNotNone(acts[name]["started_at"])
            self.assertIsNotNone(acts[name]["finished_at"])
        inspected = self.d.ctl_json("inspect", report["id"])
        self.assertEqual(inspected, report)
        logs = self.d.ctl_json("logs", report["id"], "--action", "report")
        self.assertEqual([l["line"] for l in logs], ["done"])
        # No stock low: reorder is skipped, report still runs (always).
        report = self.run_wait("inventory-reorder", "--input", '{"stock": {"apples": 30}}')
        self.assertEqual(report["actions"]["reorder"]["status"], "skipped")
        self.assertEqual(report["actions"]["report"]["status"], "succeeded")

    def test_diamond_branches_run_in_parallel(self):
        report = self.run_wait("diamond")
        self.assertEqual(report["status"], "succeeded")
        a = report["actions"]
        self.assertEqual(a["bottom"]["output"], {"v": 5})
        # Both branches started before either finished.
        self.assertLess(ms(a["left"]["started_at"]), ms(a["right"]["finished_at"]))
        self.assertLess(ms(a["right"]["started_at"]), ms(a["left"]["finished_at"]))
        total = ms(report["finished_at"]) - ms(report["started_at"])
        self.assertLess(total, 0.95, "the two 0.5 s branches ran one after the other")

    def test_a_chain_of_quick_lua_actions_commits_once(self):
        # Each action that ends at once starts the next in the same pass of the run queue, and the
        # whole execution is one commit (issue 16: it was one per action, and one for the submission).
        before = self.d.call("stats")["commits"]
        report = self.d.call("run", {"workflow": "chain", "wait": True})
        self.assertEqual(report["status"], "succeeded", report)
        self.assertEqual(report["actions"]["c"]["output"], 3)
        self.assertEqual(self.d.call("stats")["commits"] - before, 1)

    def test_groups_and_shared_context(self):
        report = self.run_wait("groups")
        a = report["actions"]
        self.assertEqual(a["c"]["output"], {"saw_a": True, "saw_b": True})
        self.assertGreaterEqual(ms(a["c"]["started_at"]), ms(a["a"]["finished_at"]))
        self.assertGreaterEqual(ms(a["c"]["started_at"]), ms(a["b"]["finished_at"]))

    def test_retries_with_exponential_backoff(self):
        report = self.run_wait("flaky")
        self.assertEqual(report["status"], "succeeded")
        flaky = report["actions"]["flaky"]
        self.assertEqual(flaky["attempts"], 4)
        self.assertEqual(flaky["output"], {"tries": 4, "attempt": 4})
        logs = [l for l in self.d.ctl_json("logs", report["id"]) if "retrying in" in l["line"]]
        self.assertEqual([l["line"].split("retrying in ")[1] for l in logs], ["200ms", "400ms", "800ms"])
        # The waits really happened: 0.2 + 0.4 + 0.8 s.
        elapsed = ms(flaky["finished_at"]) - ms(report["started_at"])
        self.assertGreaterEqual(elapsed, 1.4)

    def test_failure_skips_dependents_unless_always(self):
        report = self.run_wait("skips", expect_rc=1)
        self.assertEqual(report["status"], "failed")
        a = report["actions"]
        self.assertEqual(a["fails"]["status"], "failed")
        self.assertIn("boom", a["fails"]["error"])
        self.assertEqual(a["after"]["status"], "skipped")
        self.assertEqual(a["later"]["status"], "skipped")
        self.assertEqual(a["always"]["status"], "succeeded")
        self.assertEqual(a["always"]["output"], [])
        self.assertEqual(a["never"]["status"], "skipped")

    def test_bad_input_is_refused_naming_the_field(self):
        self.d.write("typed.lua", """
            return workflow {
              input = { count = { type = "number", required = true } },
              actions = { a = { run = function(ctx) return ctx.input.count * 2 end } },
            }
        """)
        wait_for(lambda: any(w["id"] == "typed" for w in self.d.ctl_json("list")), what="typed loaded")
        rc, out, err = self.d.ctl("run", "typed", "-i", "count=ten")
        self.assertEqual(rc, 2)
        self.assertIn("input field 'count'", err)
        rc, out, err = self.d.ctl("run", "typed")
        self.assertEqual(rc, 2)
        self.assertIn("'count' is required", err)
        report = self.run_wait("typed", "-i", "count=21")
        self.assertEqual(report["actions"]["a"]["output"], 42)

    def test_cancel_and_retry(self):
        self.d.write("slow.lua", """
            return workflow {
              actions = {
                wait = { run = function(ctx) if not ctx.input.fast then sleep(30) end; return 1 end },
                next = { needs = { "wait" }, run = function() return 2 end },
              },
            }
        """)
        wait_for(lambda: any(w["id"] == "slow" for w in self.d.ctl_json("list")), what="slow loaded")
        run_id = self.d.ctl_json("run", "slow")["id"]
        wait_for(lambda: self.d.ctl_json("inspect", run_id)["actions"]["wait"]["status"] == "running")
        self.assertEqual(self.d.ctl_json("cancel", run_id[:8]), {"id": run_id, "status": "cancelled"})
        report = self.d.ctl_json("inspect", run_id)
        self.assertEqual(report["status"], "cancelled")
        self.assertEqual(report["actions"]["wait"]["status"], "cancelled")
        self.assertEqual(report["actions"]["next"]["status"], "cancelled")
        rc, _, err = self.d.ctl("cancel", run_id)
        self.assertEqual(rc, 1)
        self.assertIn("has already ended", err)

    def test_retry_reruns_failed_actions_and_their_dependents(self):
        self.d.write("once.lua", """
            return workflow {
              actions = {
                ok    = { run = function(ctx) log.info("ok ran"); return "kept" end },
                flaky = { needs = { "ok" }, run = function(ctx)
                          if not ctx.node.tried then ctx.node.tried = true; error("first time") end
                          return "second time" end },
                after = { needs = { "flaky" }, run = function(ctx) return ctx.outputs.flaky .. "!" end },
              },
            }
        """)
        wait_for(lambda: any(w["id"] == "once" for w in self.d.ctl_json("list")), what="once loaded")
        report = self.run_wait("once", expect_rc=1)
        run_id = report["id"]
        self.assertEqual(report["actions"]["after"]["status"], "skipped")
        self.assertEqual(self.d.ctl_json("retry", run_id)["id"], run_id)
        report = self.d.call("wait", {"execution": run_id})
        self.assertEqual(report["status"], "succeeded")
        self.assertEqual(report["actions"]["ok"]["attempts"], 1)        # not run again
        self.assertEqual(report["actions"]["flaky"]["attempts"], 2)
        self.assertEqual(report["actions"]["after"]["output"], "second time!")
        self.assertEqual(sum(1 for l in self.d.ctl_json("logs", run_id) if l["line"] == "ok ran"), 1)
        rc, _, err = self.d.ctl("retry", run_id)
        self.assertEqual(rc, 1)
        self.assertIn("nothing to retry", err)

    def test_status_and_executions(self):
        self.run_wait("groups")
        st = self.d.ctl_json("status")
        # SPEC 6's keys, and the database's size (issue 19); all but version are numbers.
        self.assertEqual(set(st), {"version", "uptime_s", "workflows", "workflow_errors", "running", "queued",
                                   "database_bytes"})
        self.assertTrue(all(isinstance(v, int) for k, v in st.items() if k != "version"), st)
        self.assertEqual(st["workflows"], 5)
        ex = self.d.ctl_json("executions", "--workflow", "groups")
        self.assertEqual(len(ex), 1)
        self.assertEqual(set(ex[0]), {"id", "workflow", "status", "trigger", "created_at", "started_at", "finished_at"})
        self.assertEqual(ex[0]["trigger"], "manual")


if __name__ == "__main__":
    unittest.main()
