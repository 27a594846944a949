"""Issue 7, item 1: a Lua action that fills its workflow's memory must fail alone, as event `resource`,
and never stop the daemon. The daemon's own work on a state at its cap (reading ctx.node, building
the output, handing a result back to the coroutine, closing it) must still succeed.

The crash depended on when the collector ran, so each shape runs several times, in one daemon.
"""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import LUAFLOWCTL, LUAFLOWD, Daemon, DaemonTest, finish  # noqa: E402

# The reproduction of the issue, verbatim: no sandbox.memory, so the default cap (64 MiB).
ISSUE_HOG = """
return workflow { actions = { a = { run = function(ctx)
  local t = {}
  for i=1,1e8 do t[i]=string.rep("x",100)..i end
  return { n = #t }
end } } }
"""

# Shapes that leave the state at its cap when the daemon takes over again.
SHAPES = {
    # The error is caught; the action returns while its table still fills the state, and then a second
    # action of the same execution needs a ctx built in that state.
    "caught": """
return workflow { actions = {
  a = { run = function(ctx)
    local t = {}
    local ok, err = pcall(function() for i = 1, 1e8 do t[i] = string.rep("y", 64) .. i end end)
    ctx.node.tried = true
    return { ok = ok, n = #t, err = tostring(err):match("not enough memory") }
  end },
  b = { needs = { "a" }, run = function(ctx) return { after = ctx.outputs.a.ok } end },
} }
""",
    # Doubling a string: one huge allocation refused rather than many small ones.
    "string": """
return workflow { actions = { a = { run = function()
  local s = "x"
  while true do s = s .. s end
end } } }
""",
    # Inside a coroutine the action created.
    "coroutine": """
return workflow { actions = { a = { run = function()
  local co = coroutine.wrap(function() local t = {} for i = 1, 1e8 do t[i] = { i } end end)
  co()
end } } }
""",
    # In `when`, before the action proper.
    "when": """
return workflow { actions = { a = {
  when = function() local t = {} for i = 1, 1e8 do t[i] = tostring(i) .. "z" end return true end,
  run = function() return 1 end,
} } }
""",
    # The state is full while the action waits: the result of exec() and of sleep() is handed back
    # into a state at its cap.
    "waits": """
return workflow { actions = { a = { run = function(ctx)
  local t = {}
  pcall(function() for i = 1, 1e8 do t[i] = string.rep("w", 64) .. i end end)
  sleep(0.01)
  local r = exec({ "echo", "hello" })
  return { n = #t, out = r.stdout }
end } } }
""",
    # Kept in a lib/ module, which lives as long as the workflow's state: every later run starts at the cap.
    "module": """
local cache = require("lib.cache")
return workflow { actions = { a = { run = function(ctx)
  cache.t = cache.t or {}
  for i = #cache.t + 1, 1e8 do cache.t[i] = string.rep("m", 64) .. i end
end } } }
""",
}

CACHE = "return {}\n"


def run_report(d, workflow):
    rc, out, err = d.ctl("--json", "run", workflow, "--wait", timeout=120)
    if not out.strip():
        raise AssertionError(f"run {workflow}: exit {rc}, no report ({err.strip()}); daemon alive: "
                             f"{d.proc.poll() is None}; log:\n{d.log_text()[-3000:]}")
    return rc, json.loads(out)


class MemoryHogTest(DaemonTest):
    CONFIG = 'shutdown_grace = "5s"\nsandbox = { memory = "8M" }\n'
    WORKFLOWS = dict({f"{name}.lua": text for name, text in SHAPES.items()}, **{"lib/cache.lua": CACHE})

    def assert_alive(self):
        self.assertIsNone(self.d.proc.poll(), "luaflowd exited:\n" + self.d.log_text()[-3000:])
        self.assertEqual(self.d.ctl("status")[0], 0)

    def assert_resource_failure(self, report, action="a"):
        a = report["actions"][action]
        self.assertEqual(report["status"], "failed", report)
        self.assertEqual(a["status"], "failed", a)
        self.assertEqual(a.get("event"), "resource", a)
        self.assertIn("memory", a["error"])

    def test_every_shape_fails_alone_again_and_again(self):
        for name in ("string", "coroutine", "when", "module"):
            for _ in range(4):
                rc, report = run_report(self.d, name)
                self.assertEqual(rc, 1, report)
                self.assert_resource_failure(report)
                self.assert_alive()

    def test_work_at_the_cap_still_succeeds(self):
        for _ in range(4):
            rc, report = run_report(self.d, "caught")
            self.assertEqual(rc, 0, report)
            a = report["actions"]["a"]
            self.assertEqual(a["output"]["ok"], False)
            self.assertEqual(a["output"]["err"], "not enough memory")
            self.assertGreater(a["output"]["n"], 1000)
            self.assertEqual(report["actions"]["b"]["output"], {"after": False})
            self.assert_alive()

    def test_results_handed_back_into_a_full_state(self):
        for _ in range(4):
            rc, report = run_report(self.d, "waits")
            self.assert_alive()
            a = report["actions"]["a"]
            # Either the output fit (the collector freed enough) or it failed for memory: never a crash.
            if a["status"] == "succeeded":
                self.assertEqual(a["output"]["out"], "hello\n")
            else:
                self.assertIn("memory", a["error"], a)


class IssueReproductionTest(unittest.TestCase):
    """The issue's file, with no config file at all, in the daemon and in `luaflowctl test`."""

    def test_daemon_survives_the_issue_hog(self):
        d = Daemon({"hog.lua": ISSUE_HOG, "ok.lua": 'return workflow { actions = { a = { run = function() '
                    'return "fine" end } } }'})
        os.remove(d.config)
        try:
            d.start()
            for _ in range(3):
                rc, report = run_report(d, "hog")
                self.assertEqual(rc, 1, report)
                self.assertEqual(report["actions"]["a"].get("event"), "resource", report)
                self.assertIn("memory limit exceeded", report["actions"]["a"]["error"])
                self.assertIsNone(d.proc.poll())
            rc, report = run_report(d, "ok")
            self.assertEqual(report["actions"]["a"]["output"], "fine")
        finally:
            finish(d)

    def test_luaflowctl_test_reports_the_memory_failure(self):
        d = Daemon({"hog.lua": ISSUE_HOG})
        try:
            p = subprocess.run([LUAFLOWCTL, "--json", "test", os.path.join(d.workflows, "hog.lua")],
                               capture_output=True, text=True, timeout=120,
                               env=dict(os.environ, LUAFLOWD=LUAFLOWD))
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertNotIn("exited with", p.stderr + p.stdout)
            result = json.loads(p.stdout)
            self.assertFalse(result["ok"])
            action = result["report"]["actions"]["a"]
            self.assertEqual(action["status"], "failed")
            self.assertIn("memory limit exceeded", action["error"])
        finally:
            d.cleanup()


if __name__ == "__main__":
    unittest.main()
