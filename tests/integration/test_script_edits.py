"""Issue 7, item 5 (SPEC 5): every file a workflow uses — its file, its `script` files, its lib/ modules,
nested ones too — takes effect within 1 s of an edit; and an execution that is running, or was
interrupted by a crash, keeps the script and lib/ text it started with, across restarts too."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import DaemonTest, wait_for  # noqa: E402

# `gate` waits until the test lets it go, so that the files can change under a running execution.
WORKFLOW = """
return workflow {
  concurrency = 4,
  input = { gate = { type = "string" } },
  actions = {
    gate = { run = function(ctx)
      if ctx.input.gate then
        while not pcall(fs.read, ctx.input.gate) do sleep(0.02) end
      end
      return true
    end },
    step = { needs = { "gate" }, script = "steps/step.lua" },
    fmt = { needs = { "gate" }, run = function() return require("lib.text.fmt").version end },
  },
}
"""
STEP = 'local ctx = ...\nreturn "script %s"\n'
FMT = 'return { version = "lib %s" }\n'
CONFIG = 'shutdown_grace = "1s"\nsandbox = { paths = { "%s" } }\n'


class ScriptEditTest(DaemonTest):
    WORKFLOWS = {"w.lua": WORKFLOW, "steps/step.lua": STEP % "v1", "lib/text/fmt.lua": FMT % "v1"}

    def setUp(self):
        import tempfile
        self.gates = tempfile.mkdtemp(prefix="luaflow-gates-")
        self.CONFIG = CONFIG % self.gates
        super().setUp()

    def tearDown(self):
        super().tearDown()
        import shutil
        shutil.rmtree(self.gates, ignore_errors=True)

    def outputs(self, report):
        return report["actions"]["step"]["output"], report["actions"]["fmt"]["output"]

    def test_script_and_nested_module_edits_take_effect(self):
        self.assertEqual(self.outputs(self.run_wait("w")), ("script v1", "lib v1"))
        self.d.write("steps/step.lua", STEP % "v2")
        wait_for(lambda: self.outputs(self.run_wait("w"))[0] == "script v2", timeout=1.5, interval=0.05,
                 what="the edited script to run")
        self.d.write("lib/text/fmt.lua", FMT % "v2")
        wait_for(lambda: self.outputs(self.run_wait("w"))[1] == "lib v2", timeout=1.5, interval=0.05,
                 what="the edited nested module to run")
        # A script that no longer compiles is a load error naming it; the last good version stays.
        self.d.write("steps/step.lua", "return (")
        wait_for(lambda: any(w["status"] == "error" for w in self.d.ctl_json("list")), timeout=1.5,
                 what="the broken script in list")
        err = next(w for w in self.d.ctl_json("list") if w["id"] == "w")["error"]
        self.assertIn("step.lua", err)
        self.assertEqual(self.outputs(self.run_wait("w")), ("script v2", "lib v2"))

    def test_running_execution_keeps_its_text(self):
        gate = os.path.join(self.gates, "go")
        eid = self.d.ctl_json("run", "w", "-i", f"gate={gate}")["id"]
        wait_for(lambda: self.d.ctl_json("inspect", eid)["actions"]["gate"]["status"] == "running")
        self.d.write("steps/step.lua", STEP % "v2")
        self.d.write("lib/text/fmt.lua", FMT % "v2")
        wait_for(lambda: self.outputs(self.run_wait("w")) == ("script v2", "lib v2"), timeout=1.5,
                 interval=0.05, what="the new text to be in use")
        with open(gate, "w") as f:
            f.write("go")
        wait_for(lambda: self.d.ctl_json("inspect", eid)["status"] == "succeeded", timeout=10)
        self.assertEqual(self.outputs(self.d.ctl_json("inspect", eid)), ("script v1", "lib v1"))

    def test_interrupted_execution_keeps_its_text_across_a_restart(self):
        gate = os.path.join(self.gates, "go")
        eid = self.d.ctl_json("run", "w", "-i", f"gate={gate}")["id"]
        wait_for(lambda: self.d.ctl_json("inspect", eid)["actions"]["gate"]["status"] == "running")
        self.d.kill9()
        self.d.write("steps/step.lua", STEP % "v2")
        self.d.write("lib/text/fmt.lua", FMT % "v2")
        with open(gate, "w") as f:
            f.write("go")
        self.d.start()
        wait_for(lambda: self.d.ctl_json("inspect", eid)["status"] in ("succeeded", "failed"), timeout=15)
        report = self.d.ctl_json("inspect", eid)
        self.assertEqual(report["status"], "failed", report)  # `gate` was interrupted, with no retries
        # The gate failed, so nothing else ran; retry re-runs it with the definition it started with.
        self.d.ctl_json("retry", eid)
        wait_for(lambda: self.d.ctl_json("inspect", eid)["status"] == "succeeded", timeout=15)
        self.assertEqual(self.outputs(self.d.ctl_json("inspect", eid)), ("script v1", "lib v1"))
        # New executions get the new text.
        self.assertEqual(self.outputs(self.run_wait("w")), ("script v2", "lib v2"))


if __name__ == "__main__":
    unittest.main()
