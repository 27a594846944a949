"""Issue 8 (hostile input), items 5, 7 and 8: no line of Lua can hang or crash the daemon.

Each reproduction runs in a daemon whose socket must keep answering meanwhile (SPEC 3: an action that
loops is stopped at its timeout; code inside a C call is stopped once it has run 250 ms without a point
to pause at; input nested deeper than 128 levels is refused).
"""
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Daemon, finish, main, ms, wait_for  # noqa: E402


def action(body, timeout="2s"):
    return ('return workflow { actions = { a = { timeout = "%s", run = function(ctx)\n%s\nend } } }\n'
            % (timeout, body))


WORKFLOWS = {
    # Item 5, verbatim: a pcall loop inside a coroutine.wrap; the hook's error was caught for ever.
    "wrapped_pcall_loop.lua": action(
        "coroutine.wrap(function() while true do pcall(function() while true do end end) end end)()"),
    # The same without the coroutine: pcall catches the deadline's error, the loop around it does not.
    "pcall_loop.lua": action("while true do pcall(function() while true do end end) end"),
    "xpcall_handler_loop.lua": action(
        "while true do xpcall(function() error('x') end, function() while true do end end) end"),
    "caught_stop.lua": action(
        "for i = 1, 3 do pcall(table.sort, {3, 2, 1}, function() while true do end end) end return 'went on'"),
    # Lua called from C: nothing can pause it, so it is stopped 250 ms later, whatever its timeout.
    "sort_comparator_loop.lua": action(
        "local t = {} for i = 1, 50 do t[i] = i end table.sort(t, function() while true do end end)",
        timeout="30s"),
    # LuaJIT calls __tostring as a tail call: a loop there is an ordinary loop, paused and then timed out.
    "tostring_metamethod_loop.lua": action(
        "return tostring(setmetatable({}, { __tostring = function() while true do end end }))"),
    "load_reader_loop.lua": action("load(function() while true do end end)", timeout="30s"),
    # Chains of LuaJIT's fast functions ran without a Lua instruction: a SIGSEGV and a hang.
    "call_metamethod_pcall.lua": action(
        "local t = setmetatable({}, {}) getmetatable(t).__call = pcall return { select('#', pcall(t)) }"),
    "tostring_metamethod_tostring.lua": action(
        "local t = setmetatable({}, {}) getmetatable(t).__tostring = tostring return tostring(t)"),
    # Item 8: C stack overflows.
    "gsub_recursion.lua": action('local function g(s) return (s:gsub(".", g)) end return g("abc")'),
    "sort_recursion.lua": action(
        "local function less(a, b) table.sort({3, 2, 1}, less) return a < b end table.sort({3, 2, 1}, less)"),
    "json_decode_deep.lua": action('return json.decode(("["):rep(66000) .. ("]"):rep(66000))'),
    "json_decode_128.lua": action('local v = json.decode(("["):rep(128) .. ("]"):rep(128)) return type(v)'),
    "json_encode_deep.lua": action(
        "local t = {} local c = t for i = 1, 1000 do c[1] = {} c = c[1] end return json.encode(t)"),
    # LuaJIT read the count as a 32-bit integer: 2^40 gave "".
    "rep_huge.lua": action('return string.rep("x", 2^40)'),
    # Coroutines the action creates are sliced like the action: each runs long, and the results are right.
    "nested_coroutines.lua": action("""
local function spin(n) local x = 0 for i = 1, n do x = x + i end return x end
local inner = coroutine.create(function(a)
  local b = coroutine.yield(spin(3e6) + a)
  return spin(3e6) + b
end)
local outer = coroutine.wrap(function()
  local ok1, v1 = coroutine.resume(inner, 1)
  local ok2, v2 = coroutine.resume(inner, 2)
  coroutine.yield(v1, v2, coroutine.status(inner))
  return "done"
end)
local v1, v2, status = outer()
return { v1 = v1, v2 = v2, status = status, last = outer(), dead = select(2, pcall(outer)) }
""", timeout="60s"),
}


class HostileLuaTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(WORKFLOWS).start()

    @classmethod
    def tearDownClass(cls):
        finish(cls.d)

    def run_while_probing(self, workflow):
        """Runs `workflow` to its end while another thread times `list` over the socket; returns the
        report and the slowest answer in seconds."""
        done = threading.Event()
        slowest = [0.0]

        def probe():
            while not done.is_set():
                t0 = time.monotonic()
                self.d.call("list")
                slowest[0] = max(slowest[0], time.monotonic() - t0)
                time.sleep(0.02)

        prober = threading.Thread(target=probe)
        prober.start()
        try:
            rc, out, err = self.d.ctl("--json", "run", workflow, "--wait", timeout=120)
        finally:
            done.set()
            prober.join()
        self.assertIsNone(self.d.proc.poll(), "luaflowd died:\n" + self.d.log_text()[-3000:])
        import json
        return json.loads(out), slowest[0]

    def assert_stopped(self, workflow, status, error_part, slowest_bound=0.5):
        report, slowest = self.run_while_probing(workflow)
        a = report["actions"]["a"]
        self.assertEqual(a["status"], status, a)
        self.assertIn(error_part, a["error"], a)
        # Physical bound, not a benchmark: a dead socket would take the whole timeout.
        self.assertLess(slowest, slowest_bound, f"the socket did not answer for {slowest:.2f}s")
        return a

    def test_pcall_loop_in_a_wrapped_coroutine_stops_at_its_timeout(self):
        self.assert_stopped("wrapped_pcall_loop", "timed_out", "timed out after 2s")

    def test_pcall_loop_stops_at_its_timeout(self):
        self.assert_stopped("pcall_loop", "timed_out", "timed out after 2s")

    def test_xpcall_handler_loop_is_stopped_after_250ms(self):
        # The handler runs inside the error's C call; the stop cannot be caught by the loop around it.
        self.assert_stopped("xpcall_handler_loop", "failed", "code inside a C call ran 250 ms")

    def test_a_caught_stop_still_stops_the_action(self):
        self.assert_stopped("caught_stop", "failed", "code inside a C call ran 250 ms")

    def test_code_inside_a_c_call_is_stopped_after_250ms(self):
        for wf in ("sort_comparator_loop", "load_reader_loop"):
            with self.subTest(wf):
                a = self.assert_stopped(wf, "failed", "code inside a C call ran 250 ms without a point to pause at")
                self.assertIn(wf + ".lua:2; see luaflow-workflow(5)", a["error"])
                self.assertLess(ms(a["finished_at"]) - ms(a["started_at"]), 5, a)

    def test_a_loop_in_tostring_metamethod_is_paused_and_timed_out(self):
        self.assert_stopped("tostring_metamethod_loop", "timed_out", "timed out after 2s")

    def test_chains_of_builtins_neither_crash_nor_hang(self):
        report, _ = self.run_while_probing("call_metamethod_pcall")
        self.assertEqual(report["actions"]["a"]["status"], "succeeded", report)
        self.assert_stopped("tostring_metamethod_tostring", "timed_out", "timed out after 2s")

    def test_gsub_recursion_is_an_error_not_a_crash(self):
        self.assert_stopped("gsub_recursion", "failed", "nested too deep")

    def test_sort_comparator_recursion_is_an_error_not_a_crash(self):
        report, _ = self.run_while_probing("sort_recursion")
        a = report["actions"]["a"]
        self.assertEqual(a["status"], "failed", a)
        self.assertRegex(a["error"], "stack overflow|nested too deep")

    def test_json_nested_past_128_levels_is_refused(self):
        self.assert_stopped("json_decode_deep", "failed", "nested deeper than 128 levels")
        self.assert_stopped("json_encode_deep", "failed", "nested deeper than 128 levels")
        report, _ = self.run_while_probing("json_decode_128")
        self.assertEqual(report["actions"]["a"]["output"], "table", report)

    def test_string_rep_past_the_memory_is_an_error_naming_the_size(self):
        self.assert_stopped("rep_huge", "failed", "string.rep: the result would be 1099511627776 bytes")

    def test_nested_coroutines_are_sliced_and_keep_their_values(self):
        report, slowest = self.run_while_probing("nested_coroutines")
        a = report["actions"]["a"]
        self.assertEqual(a["status"], "succeeded", a)
        n = 3 * 10**6
        spin = n * (n + 1) // 2
        self.assertEqual(a["output"], {"v1": spin + 1, "v2": spin + 2, "status": "dead", "last": "done",
                                       "dead": "cannot resume dead coroutine"})
        self.assertLess(slowest, 0.5)


class NulInNamesTest(unittest.TestCase):
    """Item 10: an action named "a\\0b" beside "a" stopped the daemon at every run (exit 70, UNIQUE)."""

    def test_names_with_a_nul_are_refused_at_load(self):
        d = Daemon({
            "nul.lua": 'return workflow { input = { ["x\\0y"] = { type = "string" } }, actions = {\n'
                       '  a = { run = function() return 1 end },\n'
                       '  ["a\\0b"] = { run = function() return 2 end },\n'
                       '  c = { env = { ["K\\0"] = "v" }, shell = "true" },\n'
                       '} }\n',
            "ok.lua": "return workflow { actions = { a = { run = function() return 1 end } } }",
        })
        try:
            d.start()
            listed = {w["id"]: w for w in d.ctl_json("list")}
            error = listed["nul"]["error"]
            self.assertIn('action "a\\x00b": a name cannot hold control characters (or a NUL)', error)
            rc, out, err = d.ctl("validate", os.path.join(d.workflows, "nul.lua"))
            self.assertEqual(rc, 1, out + err)
            self.assertIn('input "x\\x00y": a name cannot hold control characters', out + err)
            self.assertIn("a variable's name cannot be empty or hold '=' or a NUL", out + err)
            self.assertNotEqual(d.ctl("run", "nul", "--wait")[0], 0)
            self.assertEqual(d.ctl_json("run", "ok", "--wait")["status"], "succeeded")
            self.assertIsNone(d.proc.poll())
        finally:
            finish(d)


class HostileLoadTest(unittest.TestCase):
    """Item 7: what runs while a file loads is bounded too, at start and at a reload."""

    def test_load_time_hazards_do_not_hang_the_daemon(self):
        d = Daemon({
            "ok.lua": "return workflow { actions = { a = { run = function() return 1 end } } }",
            "top_pcall_loop.lua": "while true do pcall(function() while true do end end) end",
            "index_trap.lua": "return setmetatable(workflow { actions = { a = { run = function() end } } },"
                              " { __index = function() while true do end end })",
        })
        try:
            t0 = time.monotonic()
            d.start()
            self.assertLess(time.monotonic() - t0, 10)
            listed = {w["id"]: w for w in d.ctl_json("list")}
            self.assertIn("loading took longer than 2s", listed["top_pcall_loop"]["error"])
            # A problem without a line is not put at line 0 (issue 8, also).
            self.assertNotIn(".lua:0:", listed["top_pcall_loop"]["error"])
            # Read raw: the trap never runs, and the workflow is what the table holds.
            self.assertFalse(listed["index_trap"].get("error"), listed["index_trap"])
            d.write("top_pcall_loop.lua", "coroutine.wrap(function() while true do pcall(function() "
                                          "while true do end end) end end)()")
            d.ctl("reload")
            wait_for(lambda: d.call("list") is not None, timeout=10)
            self.assertEqual(d.ctl_json("run", "ok", "--wait")["status"], "succeeded")
        finally:
            finish(d)


class RequireFifoTest(unittest.TestCase):
    """Item 7: a FIFO under lib/ that a workflow requires hung `validate` (read with std::ifstream)."""

    def test_validate_refuses_a_fifo_module_naming_it(self):
        import subprocess
        from harness import LUAFLOWCTL, LUAFLOWD
        d = Daemon({"w.lua": 'local x = require("lib.x")\n'
                             'return workflow { actions = { a = { run = function() return 1 end } } }\n'})
        try:
            os.makedirs(os.path.join(d.workflows, "lib"), exist_ok=True)
            os.mkfifo(os.path.join(d.workflows, "lib", "x.lua"))
            p = subprocess.run([LUAFLOWCTL, "validate", os.path.join(d.workflows, "w.lua")], capture_output=True,
                               text=True, timeout=60, env=dict(os.environ, LUAFLOWD=LUAFLOWD))
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            self.assertIn("x.lua: is a FIFO, not read", p.stdout + p.stderr)
        finally:
            d.cleanup()


if __name__ == "__main__":
    main()
