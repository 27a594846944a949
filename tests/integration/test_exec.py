"""exec(argv [, { stdin, env, cwd, timeout }]) from Lua actions (SPEC 3), and the `cmd`/`shell` actions that
share its child-process type: stdin, the passed environment, cwd, exit codes and signals as results, programs
that cannot start, large outputs, the output cap, timeouts and cancel killing the process group, parallel
execs, and exec refused at load time."""
import hashlib
import os
import re
import shutil
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Daemon, finish, gone, read_pid, wait_for  # noqa: E402

BASICS = r"""
return workflow { actions = { a = { run = function(ctx)
  local r = exec({ "sh", "-c", "cat; echo err >&2" }, { stdin = "hello\nworld" })
  local e = exec({ "sh", "-c", 'echo "$EXTRA/${LUAFLOW_IT_PASSED-unset}/${LUAFLOW_IT_HIDDEN-unset}"' },
                 { env = { EXTRA = "added", LUAFLOW_IT_PASSED = "overridden?" } })
  local p = exec({ "sh", "-c", 'echo "${LUAFLOW_IT_PASSED-unset}"' })
  local wd = exec({ "pwd" })
  local explicit = exec({ "pwd" }, { cwd = "/" })
  exec({ "mkdir", "-p", "sub" })
  local relative = exec({ "pwd" }, { cwd = "sub" })
  local nz = exec({ "sh", "-c", "echo partial; exit 7" })
  local ls = exec({ "ls", "-a" })
  local num = exec({ "echo", 1, 2.5 })
  local sig = exec({ "sh", "-c", "kill -KILL $$" })
  return { stdin = r.stdout, stderr = r.stderr, code = r.code, env = e.stdout, passed = p.stdout,
           wd = wd.stdout, scratch = ctx.scratch, explicit = explicit.stdout, relative = relative.stdout,
           nz_code = nz.code, nz_out = nz.stdout, ls_code = ls.code, ls = ls.stdout, num = num.stdout,
           sig = sig.signal, sig_has_code = sig.code ~= nil }
end } } }
"""

ERRORS = r"""
return workflow { actions = { bad = { run = function()
  local results = {}
  for name, f in pairs({
      missing = function() local r = exec({ "luaflow-no-such-program", "x" }); return r end,
      argv_type = function() return exec({ "echo", {} }) end,
      argv_empty = function() return exec({}) end,
      argv_string = function() return exec("ls") end,
      option = function() return exec({ "true" }, { stdn = "x" }) end,
      stdin_type = function() return exec({ "true" }, { stdin = 5 }) end,
      env_type = function() return exec({ "true" }, { env = { A = {} } }) end,
      cwd_missing = function() return exec({ "true" }, { cwd = "/nonexistent/luaflow" }) end,
      timeout_bad = function() return exec({ "true" }, { timeout = "soon" }) end,
      in_coroutine = function() return coroutine.wrap(function() return exec({ "true" }) end)() end,
  }) do
    local ok, err = pcall(f)
    results[name] = ok and "no error" or err
  end
  return results
end } } }
"""

UNCAUGHT = """
return workflow { actions = { a = { run = function() exec({ "luaflow-no-such-program" }) end } } }
"""

BIG = r"""
return workflow { actions = { a = { run = function(ctx)
  local r = exec({ "seq", "1", "1400000" })
  local w = exec({ "sh", "-c", "cat > copy.txt" }, { stdin = r.stdout })
  local c = exec({ "sh", "-c", "seq 1 1400000 | cmp - copy.txt && echo same" })
  return { len = #r.stdout, head = r.stdout:sub(1, 8), tail = r.stdout:sub(-8), written = w.code,
           same = c.stdout, stderr = c.stderr }
end } } }
"""

CAPPED = r"""
return workflow { actions = {
  out = { run = function() return exec({ "sh", "-c", "echo $$ > pid.tmp; mv pid.tmp pid; exec yes" }) end },
  err = { run = function() return exec({ "sh", "-c", "yes >&2" }) end },
  -- Under the cap, but with what the state already holds it does not fit in sandbox.memory.
  fit = { run = function()
    local pad = string.rep("x", 4 * 1024 * 1024)
    local r = exec({ "head", "-c", "32000000", "/dev/zero" })
    return #pad + #r.stdout
  end },
} }
"""

TIMEOUT = r"""
return workflow { actions = { a = { run = function(ctx)
  exec({ "sh", "-c", 'sleep 60 & echo $! > gpid; wait' }, { timeout = "1s" })
  return "not reached"
end } } }
"""

# The whole group ignores SIGTERM: the call still raises at the timeout, and the SIGKILL comes 10 s later.
STUBBORN = r"""
return workflow { actions = { a = { run = function(ctx)
  local ok, err = pcall(exec, { "sh", "-c", "trap '' TERM; sleep 60 & echo $! > gpid; wait" }, { timeout = 0.5 })
  return err
end } } }
"""

HANG = r"""
return workflow { actions = { a = { run = function(ctx)
  exec({ "sh", "-c", 'sleep 60 & echo $! > gpid.tmp; mv gpid.tmp gpid; wait' })
  return "not reached"
end } } }
"""

PARALLEL = r"""
local actions = {}
for i = 1, 20 do
  actions["p" .. i] = { run = function(ctx)
    -- A barrier: each program waits until all 20 have started, so they must run at once.
    local r = exec({ "sh", "-c", 'touch "$DIR/$N"; while [ "$(ls "$DIR" | wc -l)" -lt 20 ]; do sleep 0.05; done; echo ok' },
                   { env = { DIR = ctx.input.dir, N = tostring(i) }, timeout = 30 })
    return r.stdout
  end }
end
return workflow { actions = actions }
"""

PROCESS_ACTIONS = r"""
return workflow { actions = {
  lines = { shell = "echo one; echo two >&2; printf three" },
  slow  = { needs = { "lines" }, timeout = "1s", shell = "sleep 60 & echo $! > gpid; wait" },
} }
"""


# The grandchild leaves the session and holds the call's stdout; the shell exits at once. Its marker
# (LUAFLOW_JOB) ends it, so the call does not wait for the action's timeout.
DETACHED = r"""
return workflow { actions = { a = { timeout = "60s", run = function(ctx)
  local r = exec({ "sh", "-c", [[
setsid sh -c 'echo $$ > pid.tmp; mv pid.tmp pid; exec sleep 1238' &
while [ ! -s pid ]; do sleep 0.01; done
echo "started $LUAFLOW_JOB"
]] })
  local again = exec({ "sh", "-c", 'echo "$LUAFLOW_JOB"' })
  return { first = r.stdout, second = again.stdout }
end } } }
"""


class ExecTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        os.environ["LUAFLOW_IT_PASSED"] = "passed-value"
        os.environ["LUAFLOW_IT_HIDDEN"] = "hidden-value"
        config = ('shutdown_grace = "5s"\n'
                  'sandbox = { memory = "32M" }\n'
                  'env = { pass = { "PATH", "LUAFLOW_IT_PASSED" } }\n')
        cls.d = Daemon({"basics.lua": BASICS, "errors.lua": ERRORS, "uncaught.lua": UNCAUGHT, "big.lua": BIG,
                        "capped.lua": CAPPED, "timeout.lua": TIMEOUT, "stubborn.lua": STUBBORN, "hang.lua": HANG,
                        "parallel.lua": PARALLEL, "procs.lua": PROCESS_ACTIONS, "detached.lua": DETACHED},
                       config).start()

    @classmethod
    def tearDownClass(cls):
        finish(cls.d)

    def scratch(self, run_id, action):
        return os.path.join(self.d.state, "scratch", run_id, action)

    def test_stdin_env_cwd_and_results(self):
        report = self.d.ctl_json("run", "basics", "--wait")
        out = report["actions"]["a"]["output"]
        self.assertEqual(out["stdin"], "hello\nworld")
        self.assertEqual(out["stderr"], "err\n")
        self.assertEqual(out["code"], 0)
        # opts.env adds to (and may override) env.pass; what env.pass leaves out is not inherited.
        self.assertEqual(out["env"], "added/overridden?/unset\n")
        self.assertEqual(out["passed"], "passed-value\n")
        # The default cwd is the job's scratch directory, made on demand; a relative cwd is taken from it.
        scratch = os.path.realpath(out["scratch"])
        self.assertEqual(scratch, os.path.realpath(self.scratch(report["id"], "a")))
        self.assertEqual(out["wd"], scratch + "\n")
        self.assertEqual(out["explicit"], "/\n")
        self.assertEqual(out["relative"], os.path.join(scratch, "sub") + "\n")
        # A non-zero exit is a result, not an error; so is a signal.
        self.assertEqual(out["nz_code"], 7)
        self.assertEqual(out["nz_out"], "partial\n")
        self.assertEqual(out["sig"], "SIGKILL")
        self.assertFalse(out["sig_has_code"])
        # "ls" is found through the passed PATH.
        self.assertEqual(out["ls_code"], 0)
        self.assertIn("sub\n", out["ls"])
        self.assertEqual(out["num"], "1 2.5\n")

    def test_mistakes_and_programs_that_cannot_start_raise(self):
        out = self.d.ctl_json("run", "errors", "--wait")["actions"]["bad"]["output"]
        self.assertRegex(out["missing"],
                         r"errors\.lua:\d+: exec luaflow-no-such-program: cannot start: no such file or directory$")
        self.assertIn("exec: argv[2] must be a string, got table", out["argv_type"])
        self.assertIn("exec: argv must be a non-empty list of strings", out["argv_empty"])
        self.assertIn("exec: argv must be a list of strings, got string", out["argv_string"])
        self.assertIn("exec: unknown option 'stdn'", out["option"])
        self.assertIn("exec: stdin must be a string, got number", out["stdin_type"])
        self.assertIn("exec: env.A must be a string, got table", out["env_type"])
        self.assertIn("exec true: cwd /nonexistent/luaflow: no such directory", out["cwd_missing"])
        self.assertIn('exec: timeout must be a positive number of seconds or a duration like "30s", got soon',
                      out["timeout_bad"])
        self.assertIn("exec: only allowed while an action runs", out["in_coroutine"])
        report = self.d.ctl_json("run", "uncaught", "--wait", expect_rc=1)
        self.assertRegex(report["actions"]["a"]["error"],
                         r"uncaught\.lua:2: exec luaflow-no-such-program: cannot start: no such file or directory")

    def test_a_10_mb_stdout_arrives_intact(self):
        report = self.d.ctl_json("run", "big", "--wait")
        out = report["actions"]["a"]["output"]
        expected = "".join(f"{i}\n" for i in range(1, 1400001)).encode()
        self.assertGreater(len(expected), 10_000_000)
        self.assertEqual(out["len"], len(expected))
        self.assertEqual(out["head"], "1\n2\n3\n4\n")
        self.assertEqual(out["tail"], "1400000\n")
        self.assertEqual(out["written"], 0)
        self.assertEqual(out["same"], "same\n", out["stderr"])
        with open(os.path.join(self.scratch(report["id"], "a"), "copy.txt"), "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(), hashlib.sha256(expected).hexdigest())

    def test_output_past_the_cap_kills_the_program_and_raises(self):
        report = self.d.ctl_json("run", "capped", "--wait", expect_rc=1)
        # The cap is the smaller of 64 MiB and sandbox.memory (32M here).
        self.assertIn("exec sh: stdout exceeded 32 MiB; the program was killed", report["actions"]["out"]["error"])
        yes = read_pid(os.path.join(self.scratch(report["id"], "out"), "pid"))
        wait_for(lambda: gone(yes), timeout=5, what=f"yes ({yes}) to be killed")
        self.assertIn("exec sh: stderr exceeded 32 MiB; the program was killed", report["actions"]["err"]["error"])
        self.assertIn("exec head: its output (32000000 bytes on stdout, 0 on stderr) does not fit in the workflow's "
                      "Lua memory (sandbox.memory)", report["actions"]["fit"]["error"])
        self.assertEqual(self.d.ctl("status")[0], 0)  # and the daemon goes on

    def test_timeout_raises_and_kills_the_group(self):
        start = time.monotonic()
        report = self.d.ctl_json("run", "timeout", "--wait", expect_rc=1)
        self.assertLess(time.monotonic() - start, 8)  # SIGTERM ended it, not the SIGKILL 10 s later
        self.assertEqual(report["actions"]["a"]["status"], "failed")
        self.assertRegex(report["actions"]["a"]["error"], r"timeout\.lua:3: exec sh: timed out after 1s$")
        grandchild = read_pid(os.path.join(self.scratch(report["id"], "a"), "gpid"))
        wait_for(lambda: gone(grandchild), timeout=5, what=f"the grandchild {grandchild} to be killed")

    def test_timeout_raises_at_once_and_sigkill_follows_an_ignored_sigterm(self):
        start = time.monotonic()
        report = self.d.ctl_json("run", "stubborn", "--wait")
        self.assertLess(time.monotonic() - start, 5)
        self.assertEqual(report["actions"]["a"]["output"], "exec sh: timed out after 500ms")
        grandchild = read_pid(os.path.join(self.scratch(report["id"], "a"), "gpid"))
        self.assertFalse(gone(grandchild))  # SIGTERM is ignored: alive until the SIGKILL
        wait_for(lambda: gone(grandchild), timeout=20, what=f"the grandchild {grandchild} to get SIGKILL")
        self.assertGreater(time.monotonic() - start, 10)

    def test_cancel_during_an_exec_kills_the_process(self):
        run_id = self.d.ctl_json("run", "hang")["id"]
        grandchild = read_pid(os.path.join(self.scratch(run_id, "a"), "gpid"))
        self.assertFalse(gone(grandchild))
        self.assertEqual(self.d.ctl_json("cancel", run_id)["status"], "cancelled")
        wait_for(lambda: gone(grandchild), timeout=5, what=f"the grandchild {grandchild} to be killed")
        self.assertEqual(self.d.ctl_json("inspect", run_id)["actions"]["a"]["status"], "cancelled")

    def test_a_detached_grandchild_neither_holds_the_call_nor_outlives_it(self):
        start = time.monotonic()
        report = self.d.ctl_json("run", "detached", "--wait", timeout=60)
        took = time.monotonic() - start
        sleeper = read_pid(os.path.join(self.scratch(report["id"], "a"), "pid"))
        try:
            self.assertEqual(report["actions"]["a"]["status"], "succeeded", report)
            self.assertLess(took, 10)  # not the action's 60 s timeout
            wait_for(lambda: gone(sleeper), timeout=10, what=f"the detached sleeper {sleeper} to be ended")
            # Each call has a marker of its own: the second call is not ended with the first's leftovers.
            out = report["actions"]["a"]["output"]
            first = re.fullmatch(r"started (.+)/exec-(\d+)\n", out["first"])
            second = re.fullmatch(r"(.+)/exec-(\d+)\n", out["second"])
            self.assertIsNotNone(first, out)
            self.assertIsNotNone(second, out)
            self.assertEqual(first.group(1), f"{report['id']}/a/1")
            self.assertEqual(second.group(1), first.group(1))
            self.assertNotEqual(second.group(2), first.group(2))
        finally:
            if not gone(sleeper):
                os.kill(sleeper, 9)

    def test_twenty_parallel_execs_overlap(self):
        barrier = tempfile.mkdtemp(prefix="luaflow-barrier-")
        try:
            start = time.monotonic()
            report = self.d.ctl_json("run", "parallel", "--input", '{"dir": "%s"}' % barrier, "--wait", timeout=60)
            self.assertEqual(report["status"], "succeeded")
            self.assertEqual({a["output"] for a in report["actions"].values()}, {"ok\n"})
            self.assertEqual(len(report["actions"]), 20)
            self.assertEqual(len(os.listdir(barrier)), 20)
            self.assertLess(time.monotonic() - start, 30)
        finally:
            shutil.rmtree(barrier, ignore_errors=True)

    def test_cmd_and_shell_actions_log_lines_and_time_out(self):
        report = self.d.ctl_json("run", "procs", "--wait", expect_rc=1)
        self.assertEqual(report["actions"]["lines"]["status"], "succeeded")
        self.assertEqual(report["actions"]["lines"]["output"], {"exit_code": 0})
        logs = self.d.ctl_json("logs", report["id"], "--action", "lines")
        # Each stream in order; between the two pipes no order holds.
        self.assertEqual([l["line"] for l in logs if l["stream"] == "stdout"], ["one", "three"])
        self.assertEqual(sorted((l["stream"], l["line"]) for l in logs),
                         [("stderr", "two"), ("stdout", "one"), ("stdout", "three")])
        slow = report["actions"]["slow"]
        self.assertEqual(slow["status"], "timed_out")
        self.assertEqual(slow["error"], "timed out after 1s")
        grandchild = read_pid(os.path.join(self.scratch(report["id"], "slow"), "gpid"))
        wait_for(lambda: gone(grandchild), timeout=5, what=f"the grandchild {grandchild} to be killed")


class ExecOwnDaemonTest(unittest.TestCase):
    def test_daemon_shutdown_during_an_exec_kills_the_process(self):
        d = Daemon({"hang.lua": HANG}, grace="500ms")
        try:
            d.start()
            run_id = d.ctl_json("run", "hang")["id"]
            grandchild = read_pid(os.path.join(d.state, "scratch", run_id, "a", "gpid"))
            self.assertEqual(d.stop(), 0)
            wait_for(lambda: gone(grandchild), timeout=5, what=f"the grandchild {grandchild} to be killed")
        finally:
            d.cleanup()

    def test_exec_on_a_gpu_host_sees_no_gpu_unless_its_env_says(self):
        os.environ["CUDA_VISIBLE_DEVICES"] = "0,1"  # passed on (env.pass) by the daemon's environment
        d = Daemon({"gpu.lua": r"""
            return workflow { actions = { a = { run = function()
              local show = 'echo "[${CUDA_VISIBLE_DEVICES-unset}]"'
              return { plain = exec({ "sh", "-c", show }).stdout,
                       own = exec({ "sh", "-c", show }, { env = { CUDA_VISIBLE_DEVICES = "1" } }).stdout }
            end } } }
        """}, 'hosts = { ["local"] = { gpus = { "0", "1" } } }\n'
              'env = { pass = { "PATH", "CUDA_VISIBLE_DEVICES" } }\n')
        try:
            d.start()
            out = d.ctl_json("run", "gpu", "--wait")["actions"]["a"]["output"]
            self.assertEqual(out, {"plain": "[]\n", "own": "[1]\n"})
            self.assertEqual(d.stop(), 0)
        finally:
            del os.environ["CUDA_VISIBLE_DEVICES"]
            d.cleanup()

    def test_exec_at_load_time_is_refused(self):
        d = Daemon()
        marker = os.path.join(d.dir, "marker")
        d.write("loadtime.lua", f"""
            exec({{ "touch", "{marker}" }})
            return workflow {{ actions = {{ a = {{ run = function() return 1 end }} }} }}
        """)
        try:
            d.start()
            listed = wait_for(lambda: [w for w in d.ctl_json("list") if w["id"] == "loadtime"], what="loadtime listed")
            self.assertEqual(listed[0]["status"], "error")
            self.assertRegex(listed[0]["error"], r"loadtime\.lua:2: exec: only allowed while an action runs")
            self.assertFalse(os.path.exists(marker))
            self.assertEqual(d.stop(), 0)
        finally:
            d.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
