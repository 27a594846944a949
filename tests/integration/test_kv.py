"""kv.* from Lua and `luaflowctl kv` (issue 5): per workflow and global, JSON values, durable before the call
returns (kill -9 right after a set keeps it)."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import Daemon, wait_for  # noqa: E402

COUNTER = """
return workflow {
  concurrency = 10,
  actions = { bump = { run = function(ctx)
    local n = kv.incr("runs")
    kv.set("last", { n = n, input = ctx.input })
    local total = kv.global.incr("total", 10)
    return { n = n, last = kv.get("last"), total = total, none = kv.get("never set") }
  end } },
}
"""

ERRORS = """
return workflow { actions = { bad = { run = function()
  local results = {}
  kv.set("text", "abc")
  for name, f in pairs({
      incr_text = function() return kv.incr("text") end,
      incr_by = function() return kv.incr("x", "1") end,
      key = function() return kv.get(42) end,
      empty = function() return kv.set("", 1) end,
      nil_value = function() return kv.set("k", nil) end,
      func_value = function() return kv.set("k", { f = function() end }) end }) do
    local ok, err = pcall(f)
    results[name] = ok and "no error" or err
  end
  results.deleted = kv.delete("text")
  results.again = kv.delete("text")
  return results
end } } }
"""

THEN_HANG = """
return workflow { actions = { a = { timeout = "60s", run = function()
  kv.set("saved", { at = "set" })
  log.info("set returned")
  sleep(60)
end } } }
"""


class KvTest(harness.DaemonTest):
    WORKFLOWS = {"counter.lua": COUNTER, "errors.lua": ERRORS}

    def test_values_are_kept_per_workflow_and_globally(self):
        for i in range(3):
            out = self.run_wait("counter", "--input", '{"i": %d}' % i)["actions"]["bump"]["output"]
            self.assertEqual(out["n"], i + 1)
            self.assertEqual(out["last"], {"n": i + 1, "input": {"i": i}})
            self.assertEqual(out["total"], 10 * (i + 1))
            self.assertNotIn("none", out)  # kv.get of a missing key is nil
        self.assertEqual(self.d.ctl_json("kv", "get", "runs", "--workflow", "counter"), 3)
        self.assertEqual(self.d.ctl_json("kv", "get", "total"), 30)
        listed = self.d.ctl_json("kv", "list", "--workflow", "counter")
        self.assertEqual([e["key"] for e in listed], ["last", "runs"])
        self.assertEqual(listed[0]["value"], {"n": 3, "input": {"i": 2}})
        # Ten at once: every increment counted once.
        ids = [self.d.ctl_json("run", "counter")["id"] for _ in range(10)]
        for i in ids:
            self.d.ctl_json("inspect", i)
        wait_for(lambda: all(self.d.ctl_json("inspect", i)["status"] == "succeeded" for i in ids), timeout=20)
        self.assertEqual(self.d.ctl_json("kv", "get", "runs", "--workflow", "counter"), 13)

    def test_luaflowctl_sets_json_or_text_and_lua_sees_it(self):
        self.d.ctl_json("kv", "set", "runs", "100", "--workflow", "counter")
        self.d.ctl_json("kv", "set", "greeting", "hello world")
        self.d.ctl_json("kv", "set", "config", '{"limit": 5}')
        self.assertEqual(self.d.ctl_json("kv", "get", "greeting"), "hello world")
        self.assertEqual(self.d.ctl_json("kv", "get", "config"), {"limit": 5})
        out = self.run_wait("counter")["actions"]["bump"]["output"]
        self.assertEqual(out["n"], 101)
        rc, out, err = self.d.ctl("kv", "get", "nothing")
        self.assertEqual(rc, 1)
        self.assertIn("no key 'nothing' in kv.global", err)
        rc, out, err = self.d.ctl("kv", "get", "x", "--workflow", "nope")
        self.assertEqual(rc, 1)
        self.assertIn("no workflow 'nope'", err)
        rc, out, err = self.d.ctl("kv", "put", "x")
        self.assertEqual(rc, 2)

    def test_issue_13_luaflowctl_kv_delete(self):
        self.d.ctl_json("kv", "set", "runs", "7", "--workflow", "counter")
        self.d.ctl_json("kv", "set", "runs", "8")
        self.assertEqual(self.d.ctl_json("kv", "delete", "runs", "--workflow", "counter"),
                         {"key": "runs", "deleted": True})
        rc, out, err = self.d.ctl("kv", "get", "runs", "--workflow", "counter")
        self.assertEqual(rc, 1)
        self.assertIn("no key 'runs' in the kv of counter", err)
        self.assertEqual(self.d.ctl_json("kv", "get", "runs"), 8)  # the global one is another key
        rc, out, err = self.d.ctl("kv", "delete", "runs")
        self.assertEqual((rc, out.strip()), (0, "deleted runs"), err)
        self.assertEqual(self.d.ctl_json("kv", "list"), [])
        # Deleting what is not there, or in a workflow that is not there, says so.
        rc, out, err = self.d.ctl("kv", "delete", "runs")
        self.assertEqual(rc, 1)
        self.assertIn("no key 'runs' in kv.global", err)
        rc, out, err = self.d.ctl("kv", "delete", "x", "--workflow", "nope")
        self.assertEqual(rc, 1)
        self.assertIn("no workflow 'nope'", err)
        self.assertEqual(self.d.ctl("kv", "delete")[0], 2)
        # Lua sees the key gone: the counter starts again.
        self.assertEqual(self.run_wait("counter")["actions"]["bump"]["output"]["n"], 1)

    def test_mistakes_raise_naming_the_call_and_key(self):
        out = self.run_wait("errors")["actions"]["bad"]["output"]
        self.assertIn("kv.incr('text'): the value is not a number: \"abc\"", out["incr_text"])
        self.assertIn("kv.incr('x'): the increment must be a number, got string", out["incr_by"])
        self.assertIn("kv.get: the key must be a string, got number", out["key"])
        self.assertIn("kv.set: the key must be 1 to 1024 bytes", out["empty"])
        self.assertIn("kv.set: a value is required", out["nil_value"])
        self.assertIn("kv.set('k'): value.f: cannot encode a function", out["func_value"])
        self.assertIs(out["deleted"], True)
        self.assertIs(out["again"], False)


class KvDurabilityTest(unittest.TestCase):
    def test_a_set_that_returned_survives_kill_9(self):
        d = Daemon({"hang.lua": THEN_HANG})
        try:
            d.start()
            d.ctl_json("run", "hang")
            wait_for(lambda: "set returned" in d.log_text() or any(
                l["line"] == "set returned" for e in d.ctl_json("executions")
                for l in d.ctl_json("logs", e["id"])), timeout=10, what="kv.set to return")
            d.kill9()
            d.start()
            self.assertEqual(d.ctl_json("kv", "get", "saved", "--workflow", "hang"), {"at": "set"})
        finally:
            d.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
