"""Issue 8, items 9 and 11: each action's globals are its own, over a read-only sandbox (SPEC 3).

Global writes and patches of string.* used to persist into later executions of the same workflow and
leak between its concurrent ones; a global holding what a pcall'd loop filled kept the state full.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import DaemonTest, main  # noqa: E402


class SandboxIsolationTest(DaemonTest):
    WORKFLOWS = {
        "counter.lua": """
            helper_calls = 0  -- a file-level global: read-only at run time
            local function bump() return (count or 0) + 1 end
            return workflow { actions = {
              a = { run = function(ctx) count = bump() return { count = count } end },
              b = { needs = { "a" }, run = function(ctx) return { seen = count == nil } end },
            } }
        """,
        "patch.lua": """
            return workflow { actions = { a = { run = function(ctx)
              local ok, err = pcall(function() string.upper = function() return "patched" end end)
              local ok2, err2 = pcall(function() helper = 1; json = nil end)
              local ok3 = pcall(rawset, string, "lower", print)
              return { ok = ok, err = err, ok2 = ok2, err2 = err2, ok3 = ok3, upper = ("x"):upper() }
            end } } }
        """,
        "file_global.lua": """
            limit = 3
            return workflow { actions = { a = { run = function(ctx)
              local ok, err = pcall(function() limit = limit + 1 end)
              return { limit = limit, ok = ok, err = err }
            end } } }
        """,
        # Item 9: a global holding a pcall'd memory hog, then the next execution.
        "hog_global.lua": """
            return workflow { actions = {
              a = { run = function(ctx)
                big = {}
                pcall(function() local i = 0 while true do i = i + 1 big[i] = ("y"):rep(100) .. i end end)
                return { filled = #big > 1000 }  -- may itself find no room: then a fails for memory
              end },
              b = { needs = { "a" }, always = true, run = function(ctx) return { big = big == nil } end },
            } }
        """,
        # Item 9: 2 000 parallel actions each got a copy of every finished output (exit 1, or minutes).
        "wide.lua": "return workflow { actions = {\n" + "".join(
            f"  a{i} = {{ run = function(ctx) return {{ i = {i} }} end }},\n" for i in range(2000)) + "} }\n",
        "outputs_view.lua": """
            return workflow { actions = {
              a = { run = function() return { n = 1, list = { 1, 2 } } end },
              b = { run = function() return "bee" end },
              c = { needs = { "a", "b" }, run = function(ctx)
                ctx.outputs.a.n = 99  -- its own copy: d does not see it
                local names = {}
                for name in pairs(ctx.outputs) do names[#names + 1] = name end
                table.sort(names)
                return { names = names, encoded = json.decode(json.encode(ctx.outputs)), len = #ctx.outputs.a.list }
              end },
              d = { needs = { "c" }, run = function(ctx) return { n = ctx.outputs.a.n, c = ctx.outputs.c.len } end },
            } }
        """,
    }

    def test_two_thousand_parallel_actions_succeed(self):
        report = self.run_wait("wide")
        self.assertEqual(report["status"], "succeeded")
        self.assertEqual(len(report["actions"]), 2000)
        self.assertEqual(report["actions"]["a1999"]["output"], {"i": 1999})

    def test_ctx_outputs_lists_encodes_and_stays_private(self):
        report = self.run_wait("outputs_view")
        c = report["actions"]["c"]["output"]
        self.assertEqual(c["names"], ["a", "b"])
        self.assertEqual(c["encoded"], {"a": {"n": 99, "list": [1, 2]}, "b": "bee"})
        self.assertEqual(c["len"], 2)
        self.assertEqual(report["actions"]["d"]["output"], {"n": 1, "c": 2})

    def test_globals_an_action_sets_are_gone_when_it_ends(self):
        for _ in range(3):
            report = self.run_wait("counter")
            self.assertEqual(report["actions"]["a"]["output"], {"count": 1}, report)
            self.assertEqual(report["actions"]["b"]["output"], {"seen": True}, report)

    def test_the_sandbox_and_its_libraries_are_read_only(self):
        for _ in range(2):
            out = self.run_wait("patch")["actions"]["a"]["output"]
            self.assertFalse(out["ok"])
            self.assertIn("string is read-only", out["err"])
            self.assertFalse(out["ok2"])
            self.assertIn("global 'json' is read-only", out["err2"])
            self.assertFalse(out["ok3"])
            self.assertEqual(out["upper"], "X")

    def test_file_level_globals_are_read_only_at_run_time(self):
        out = self.run_wait("file_global")["actions"]["a"]["output"]
        self.assertEqual(out["limit"], 3)
        self.assertFalse(out["ok"])
        self.assertIn("global 'limit' is read-only", out["err"])

    def test_a_global_filled_to_the_cap_is_dropped_with_its_action(self):
        for _ in range(3):
            rc, out, err = self.d.ctl("--json", "run", "hog_global", "--wait")
            import json
            report = json.loads(out)
            a = report["actions"]["a"]
            if a["status"] != "succeeded":
                self.assertEqual(a.get("event"), "resource", a)
            self.assertEqual(report["actions"]["b"]["output"], {"big": True}, report)
            self.assertIsNone(self.d.proc.poll())


if __name__ == "__main__":
    main()
