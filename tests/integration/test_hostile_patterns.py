"""Hostile patterns (issue 14, items 6 and 8): a backtracking pattern is stopped, naming string.find,
while the daemon keeps answering; gsub calling itself from its callback fails the action, not the
daemon."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import DaemonTest, main  # noqa: E402

# The reproduction: LuaJIT's matcher backtracked in C for hours, out of the hook's reach.
BACKTRACK = """
return workflow { actions = { hang = { timeout = "2s", run = function()
  return ("a"):rep(3000):find(("a-"):rep(12) .. "b")
end } } }
"""

GSUB_RECURSION = """
return workflow { actions = { recurse = { run = function()
  local function g(s) return (s:gsub(".", g)) end
  return g("abc")
end } } }
"""

PATTERNS = """
return workflow { actions = { parse = { run = function()
  local k, v = ("key=value"):match("(%w+)=(%w+)")
  local words = {}
  for w in ("the quick  brown fox"):gmatch("%a+") do words[#words + 1] = w end
  return { k = k, v = v, words = words, swapped = (("hello world"):gsub("(%w+) (%w+)", "%2 %1")),
           at = { ("a.b"):find(".", 1, true) } }
end } } }
"""


class HostilePatternsTest(DaemonTest):
    WORKFLOWS = {"backtrack.lua": BACKTRACK, "gsub-recursion.lua": GSUB_RECURSION, "patterns.lua": PATTERNS}

    def worst_latency_while_running(self, execution, limit=10.0):
        """The slowest answer to `list` over the socket while the execution has not ended, and how many
        answers there were. (The socket itself: luaflowctl's own start-up on a busy machine is no measure
        of the daemon.)"""
        worst = 0.0
        answers = 0
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            self.d.call("list")
            worst = max(worst, time.monotonic() - t0)
            answers += 1
            if self.d.call("inspect", {"execution": execution})["status"] not in ("queued", "running"):
                return worst, answers
        raise AssertionError(f"execution {execution} still running after {limit}s")

    def test_backtracking_pattern_fails_naming_string_find(self):
        execution = self.d.ctl_json("run", "backtrack")["id"]
        worst, answers = self.worst_latency_while_running(execution)
        print(f"list while the pattern ran: {answers} answers, worst {worst * 1000:.0f} ms", flush=True)
        self.assertEqual(self.d.ctl("list")[0], 0)
        self.assertLess(worst, 0.5, "the daemon stopped answering while the pattern ran")
        report = self.d.ctl_json("inspect", execution)
        hang = report["actions"]["hang"]
        self.assertEqual(hang["status"], "failed")
        self.assertIn("string.find ran 250 ms without a point to pause at", hang["error"])

    def test_gsub_calling_itself_fails_the_action_and_the_daemon_lives(self):
        report = self.run_wait("gsub-recursion", expect_rc=1)
        recurse = report["actions"]["recurse"]
        self.assertEqual(recurse["status"], "failed")
        self.assertIn("string.gsub: callbacks nested too deep (200)", recurse["error"])
        self.assertEqual(self.d.proc.poll(), None)
        self.assertEqual(self.d.ctl("status")[0], 0)
        out = self.run_wait("patterns")["actions"]["parse"]["output"]
        self.assertEqual(out, {"k": "key", "v": "value", "words": ["the", "quick", "brown", "fox"],
                               "swapped": "world hello", "at": [2, 2]})


if __name__ == "__main__":
    main()
