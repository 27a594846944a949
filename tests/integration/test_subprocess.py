"""Subprocess actions on this machine (SPEC 3): the LUAFLOW_INPUT/LUAFLOW_OUTPUT protocol, {{ expr }} argv
templates, env and cwd, logs line by line and live with --follow, timeouts killing the process group,
queues and host resources (distinct GPUs, a third one waiting with its reason in inspect), memory limits
failing with event `resource`, and what a restart does to a job an earlier run left running."""
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import LUAFLOWCTL, Daemon, finish, gone, read_pid, read_text, wait_for  # noqa: E402

PY = "/usr/bin/python3"

PROTOCOL = r"""
return workflow {
  context = { flag = "on" },
  actions = {
    first = { run = function(ctx) ctx.shared.seen = "yes"; return { n = 41 } end },
    convert = {
      needs = { "first" },
      config = { scale = 2 },
      cmd = { "%(py)s", "-c", [[
import json, os
doc = json.load(open(os.environ["LUAFLOW_INPUT"]))
out = {"n": doc["outputs"]["first"]["n"] + 1, "input": doc["input"], "shared": doc["shared"],
       "config": doc["config"], "execution": doc["execution"], "cwd": os.getcwd(),
       "scratch": os.environ["LUAFLOW_SCRATCH"], "job": os.environ["LUAFLOW_JOB"]}
json.dump(out, open(os.environ["LUAFLOW_OUTPUT"], "w"))
]] },
    },
    check = { needs = { "convert" }, run = function(ctx) return ctx.outputs.convert.n * 10 end },
    plain = { shell = "echo no output file" },
  },
}
""" % {"py": PY}

TEMPLATES = r"""
return workflow {
  input = { name = { type = "string", required = true }, count = { type = "number", default = 3 } },
  actions = {
    first = { run = function() return { n = 7, list = { 1, 2 } } end },
    echo = {
      needs = { "first" },
      cmd = { "%(py)s", "-c", "import sys, json; print(json.dumps(sys.argv[1:]))",
              "{{ input.name }}", "n={{ outputs.first.n }}/{{ ctx.input.count * 2 }}", "{{ outputs.first.list }}",
              "{{ execution.attempt }}", "{{ true }}", "{{ 2.5 }}", "literal $HOME; `x`", "{{ 'a' .. 'b' }}{{ 'c' }}" },
    },
  },
}
""" % {"py": PY}

TEMPLATE_NIL = r"""
return workflow { actions = { a = { cmd = { "echo", "{{ input.missing.deeper }}" } },
                              b = { cmd = { "echo", "x{{ input.nothing }}" } } } }
"""

TEMPLATE_SYNTAX = r"""
return workflow {
  actions = {
    a = { cmd = { "echo", "{{ input. }}" } },
  },
}
"""

TEMPLATE_UNCLOSED = r"""
return workflow { actions = { a = { cmd = { "echo", "{{ input.x" } } } }
"""

SECRET = "it-token-8f3a21"

FAILS = r"""
return workflow { actions = {
  code = { shell = "echo before; exit 3" },
  traceback = { cmd = { "PY", "-c", "print('working'); raise ValueError('bad row 12')" } },
  long = { cmd = { "PY", "-c", [[import sys; sys.stderr.write("e" * (1 << 20) + "\n\n"); sys.exit(4)]] } },
  leak = { shell = 'echo "key SECRET was rejected" >&2; exit 5' },
  killed = { shell = 'echo "about to die" >&2; kill -9 $$' },
  badjson = { shell = 'echo "{not json" > "$LUAFLOW_OUTPUT"' },
  missing = { cmd = { "luaflow-no-such-program" } },
  env = { env = { EXTRA = "added" }, cwd = "/", shell = 'echo "$EXTRA:$(pwd):${LUAFLOW_IT_HIDDEN-unset}"' },
} }
""".replace("PY", PY).replace("SECRET", SECRET)

LINES = r"""
return workflow { actions = { a = { shell = [[
i=1
while [ $i -le 300 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done
]] } } }
"""

FOLLOW = r"""
return workflow { actions = { a = { shell = [[
echo first
while [ ! -e "$LUAFLOW_SCRATCH/go" ]; do sleep 0.02; done
echo second
]] } } }
"""

TIMEOUTS = r"""
return workflow { actions = {
  group = { timeout = "1s", shell = 'sleep 60 & echo $! > gpid; wait' },
  stubborn = { timeout = "500ms", shell = [[trap '' TERM; sh -c 'trap "" TERM; while :; do sleep 0.05; done' & echo $! > gpid; wait]] },
} }
"""

GPUS = r"""
local function job(name)
  return { resources = { gpus = 1 }, cmd = { "%(py)s", "-c", [[
import json, os, time
d = os.environ["LUAFLOW_SCRATCH"]
open(os.path.join(d, "devices"), "w").write(os.environ.get("CUDA_VISIBLE_DEVICES", "none"))
while not os.path.exists(os.environ["RELEASE"]): time.sleep(0.02)
json.dump({"devices": os.environ.get("CUDA_VISIBLE_DEVICES")}, open(os.environ["LUAFLOW_OUTPUT"], "w"))
]] }, env = { RELEASE = "%(release)s/" .. name } }
end
return workflow { actions = { a = job("a"), b = job("b"), c = job("c") } }
"""

# On a host with GPUs, a job that asks for none sees none: CUDA_VISIBLE_DEVICES is set, and empty.
NOGPU = r"""
return workflow { actions = {
  none = { shell = 'echo "[${CUDA_VISIBLE_DEVICES-unset}]"' },
  one = { resources = { gpus = 1 }, shell = 'echo "[${CUDA_VISIBLE_DEVICES-unset}]"' },
} }
"""

QUEUE = r"""
return workflow { actions = {
  a = { queue = "one", shell = 'while [ ! -e "%(release)s/go" ]; do sleep 0.02; done' },
  b = { queue = "one", shell = "true" },
} }
"""

IMPOSSIBLE = r"""
return workflow { actions = {
  gpus = { resources = { gpus = 3 }, shell = "true" },
  host = { host = "nowhere", shell = "true" },
  after = { needs = { "gpus" }, shell = "true" },
} }
"""

MEMORY = r"""
return workflow { actions = {
  hog = { resources = { memory = "64M" }, cmd = { "%(py)s", "-c", "x = bytearray(300 * 1024 * 1024)" } },
  fits = { resources = { memory = "256M" }, cmd = { "%(py)s", "-c", "x = bytearray(8 * 1024 * 1024); print('ok')" } },
} }
""" % {"py": PY}

LEFTOVER = r"""
return workflow { actions = { a = { retries = 1, shell = [[
if [ -e second ]; then echo "second attempt"; exit 0; fi
touch second
%(trap)s
sleep 300 & echo $! > gpid
echo $$ > pid
wait
]] } } }
"""








class SubprocessTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.release = tempfile.mkdtemp(prefix="luaflow-release-")
        secret_file = os.path.join(cls.release, "secret")
        with open(secret_file, "w") as f:
            f.write(SECRET + "\n")
        cls.d = Daemon({
            "protocol.lua": PROTOCOL, "templates.lua": TEMPLATES, "template-nil.lua": TEMPLATE_NIL,
            "template-syntax.lua": TEMPLATE_SYNTAX, "template-unclosed.lua": TEMPLATE_UNCLOSED,
            "fails.lua": FAILS, "lines.lua": LINES, "follow.lua": FOLLOW, "timeouts.lua": TIMEOUTS,
            "gpus.lua": GPUS % {"py": PY, "release": cls.release}, "nogpu.lua": NOGPU,
            "queue.lua": QUEUE % {"release": cls.release}, "impossible.lua": IMPOSSIBLE, "memory.lua": MEMORY,
        }, config='shutdown_grace = "2s"\n'
                  'queues = { one = { concurrency = 1 } }\n'
                  'hosts = { ["local"] = { gpus = { "0", "1" } } }\n'
                  f'env = {{ secrets = {{ TOKEN = "{secret_file}" }} }}\n')
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        finish(cls.d)

    def scratch(self, run_id, action):
        return os.path.join(self.d.state, "scratch", run_id, action)

    def test_the_input_and_output_files_round_trip(self):
        report = self.d.ctl_json("run", "protocol", "-i", "who=me", "--wait")
        out = report["actions"]["convert"]["output"]
        self.assertEqual(out["n"], 42)
        self.assertEqual(out["input"], {"who": "me"})
        self.assertEqual(out["shared"], {"flag": "on", "seen": "yes"})
        self.assertEqual(out["config"], {"scale": 2})
        self.assertEqual(out["execution"]["id"], report["id"])
        self.assertEqual(out["execution"]["workflow"], "protocol")
        self.assertEqual(out["execution"]["attempt"], 1)
        self.assertEqual(out["cwd"], self.scratch(report["id"], "convert"))
        self.assertEqual(out["scratch"], out["cwd"])
        self.assertEqual(out["job"], report["id"] + "/convert/1")
        self.assertEqual(report["actions"]["check"]["output"], 420)
        self.assertEqual(report["actions"]["plain"]["output"], {"exit_code": 0})
        self.assertEqual(report["actions"]["convert"]["host"], "local")
        self.assertEqual(report["actions"]["convert"]["resources"], {"cpus": 0, "gpu_count": 0, "gpus": [], "memory": 0})

    def test_templates_fill_the_argv_from_ctx(self):
        report = self.d.ctl_json("run", "templates", "-i", "name=it's me", "--wait")
        logs = self.d.ctl_json("logs", report["id"], "--action", "echo")
        self.assertEqual(json.loads(logs[0]["line"]),
                         ["it's me", "n=7/6", "[1,2]", "1", "true", "2.5", "literal $HOME; `x`", "abc"])

    def test_a_nil_template_fails_the_attempt_naming_the_argument(self):
        report = self.d.ctl_json("run", "template-nil", "--wait", expect_rc=1)
        self.assertIn("cmd: ", report["actions"]["a"]["error"])
        self.assertIn("attempt to index", report["actions"]["a"]["error"])
        self.assertEqual(report["actions"]["b"]["error"], "cmd: cmd[2]: {{ input.nothing }} is nil")

    def test_template_syntax_errors_are_load_errors(self):
        listing = {w["id"]: w for w in self.d.ctl_json("list")}
        self.assertEqual(listing["template-syntax"]["status"], "error")
        self.assertRegex(listing["template-syntax"]["error"],
                         r"template-syntax\.lua:4: action 'a': cmd\[2\] \{\{ input\. \}\}:1: .*near")
        self.assertRegex(listing["template-unclosed"]["error"],
                         r'template-unclosed\.lua:2: action \'a\': cmd\[2\] "\{\{ input\.x": "\{\{" without a closing')

    def test_exit_codes_bad_output_missing_programs_env_and_cwd(self):
        report = self.d.ctl_json("run", "fails", "--wait", expect_rc=1)
        a = report["actions"]
        self.assertEqual((a["code"]["status"], a["code"]["exit_code"], a["code"]["error"]), ("failed", 3, "exit code 3"))
        self.assertEqual(a["badjson"]["status"], "failed")
        self.assertIn("does not hold JSON", a["badjson"]["error"])
        self.assertEqual(a["missing"]["status"], "failed")
        self.assertIn("cannot start 'luaflow-no-such-program'", a["missing"]["error"])
        self.assertEqual(a["env"]["status"], "succeeded")
        logs = self.d.ctl_json("logs", report["id"], "--action", "env")
        self.assertEqual(logs[0]["line"], "added:/:unset")

    def test_a_failure_names_the_last_line_of_stderr(self):
        report = self.d.ctl_json("run", "fails", "--wait", expect_rc=1)
        a = report["actions"]
        self.assertEqual((a["traceback"]["exit_code"], a["traceback"]["error"]),
                         (1, "exit code 1: ValueError: bad row 12"))
        # A megabyte-long last line is cut (the job log has it whole); the blank line after it says nothing.
        self.assertEqual(a["long"]["error"], "exit code 4: " + "e" * 500 + "\u2026")
        self.assertEqual(a["leak"]["error"], "exit code 5: key *** was rejected")
        self.assertEqual(a["killed"]["error"], "killed by signal Killed: about to die")
        shown = self.d.ctl("inspect", report["id"])[1]
        self.assertIn("exit code 1: ValueError: bad row 12", shown)
        self.assertNotIn(SECRET, shown + json.dumps(report))

    def test_lines_arrive_in_order_per_stream(self):
        report = self.d.ctl_json("run", "lines", "--wait")
        logs = self.d.ctl_json("logs", report["id"], "--action", "a")
        self.assertEqual([l["line"] for l in logs if l["stream"] == "stdout"], [f"out {i}" for i in range(1, 301)])
        self.assertEqual([l["line"] for l in logs if l["stream"] == "stderr"], [f"err {i}" for i in range(1, 301)])

    def test_follow_shows_lines_while_the_program_runs(self):
        run_id = self.d.ctl_json("run", "follow")["id"]
        p = subprocess.Popen([LUAFLOWCTL, "--socket", self.d.socket, "--json", "logs", run_id, "--follow"],
                             stdout=subprocess.PIPE, text=True)
        try:
            first = json.loads(p.stdout.readline())
            self.assertEqual((first["stream"], first["line"]), ("stdout", "first"))
            # The program is still waiting for this file: the line came live.
            self.assertEqual(self.d.ctl_json("inspect", run_id)["actions"]["a"]["status"], "running")
            open(os.path.join(self.scratch(run_id, "a"), "go"), "w").close()
            second = json.loads(p.stdout.readline())
            self.assertEqual(second["line"], "second")
            self.assertEqual(p.wait(timeout=10), 0)  # --follow ends with the execution
        finally:
            p.kill()
            p.stdout.close()

    def test_timeouts_kill_the_group_and_sigkill_follows_an_ignored_sigterm(self):
        start = time.monotonic()
        report = self.d.ctl_json("run", "timeouts", "--wait", expect_rc=1)
        group, stubborn = report["actions"]["group"], report["actions"]["stubborn"]
        self.assertEqual((group["status"], group["error"]), ("timed_out", "timed out after 1s"))
        grandchild = read_pid(os.path.join(self.scratch(report["id"], "group"), "gpid"))
        wait_for(lambda: gone(grandchild), timeout=5, what=f"the grandchild {grandchild} to be killed")
        self.assertEqual(stubborn["status"], "timed_out")
        # The report waits for the job's end, so the SIGKILL 10 s after the SIGTERM came first.
        self.assertGreater(time.monotonic() - start, 10)
        self.assertTrue(gone(read_pid(os.path.join(self.scratch(report["id"], "stubborn"), "gpid"))))

    def test_two_gpu_actions_get_different_devices_and_a_third_waits(self):
        run_id = self.d.ctl_json("run", "gpus")["id"]
        devices = {}

        def two_started():
            for name in "abc":
                if text := read_text(os.path.join(self.scratch(run_id, name), "devices")):
                    devices[name] = text
            return len(devices) >= 2
        wait_for(two_started, what="two GPU actions to start")
        time.sleep(0.3)  # a third would have started by now if it could
        self.assertEqual(len(devices), 2)
        self.assertEqual(sorted(devices.values()), ["0", "1"])
        report = self.d.ctl_json("inspect", run_id)
        waiting = [n for n in "abc" if n not in devices][0]
        self.assertEqual(report["actions"][waiting]["status"], "pending")
        self.assertEqual(report["actions"][waiting]["waiting"], "host local: needs 1 GPU; 0 of 2 GPUs free")
        first = sorted(devices)[0]
        self.assertEqual(report["actions"][first]["resources"]["gpus"], [devices[first]])
        open(os.path.join(self.release, first), "w").close()
        third = wait_for(lambda: read_text(os.path.join(self.scratch(run_id, waiting), "devices")),
                         what="the third action to start once a GPU is free")
        self.assertEqual(third, devices[first])
        for name in "abc":
            open(os.path.join(self.release, name), "w").close()
        wait_for(lambda: self.d.ctl_json("inspect", run_id)["status"] == "succeeded", what="the execution to end")
        report = self.d.ctl_json("inspect", run_id)
        self.assertNotIn("waiting", report["actions"][waiting])

    def test_an_action_without_gpus_on_a_gpu_host_sees_none(self):
        report = self.d.ctl_json("run", "nogpu", "--wait")
        lines = {a: [l["line"] for l in self.d.ctl_json("logs", report["id"], "--action", a)] for a in ("none", "one")}
        self.assertEqual(lines["none"], ["[]"])
        self.assertIn(lines["one"], (["[0]"], ["[1]"]))

    def test_a_queue_runs_one_at_a_time_and_says_why_the_other_waits(self):
        run_id = self.d.ctl_json("run", "queue")["id"]
        wait_for(lambda: self.d.ctl_json("inspect", run_id)["actions"]["b"].get("waiting"),
                 what="b to wait for the queue")
        report = self.d.ctl_json("inspect", run_id)
        self.assertEqual(report["actions"]["a"]["status"], "running")
        self.assertEqual(report["actions"]["b"]["waiting"], "queue one: 1 of 1 running")
        open(os.path.join(self.release, "go"), "w").close()
        wait_for(lambda: self.d.ctl_json("inspect", run_id)["status"] == "succeeded", what="the execution to end")

    def test_what_a_host_cannot_give_fails_at_once(self):
        report = self.d.ctl_json("run", "impossible", "--wait", expect_rc=1)
        a = report["actions"]
        self.assertEqual(a["gpus"]["error"], "needs 3 GPUs but host local has 2 GPUs")
        self.assertEqual(a["host"]["error"], "no host 'nowhere' in the config (hosts: local)")
        self.assertEqual(a["after"]["status"], "skipped")

    def test_a_job_over_its_memory_limit_fails_with_event_resource(self):
        report = self.d.ctl_json("run", "memory", "--wait", expect_rc=1)
        hog, fits = report["actions"]["hog"], report["actions"]["fits"]
        self.assertEqual(hog["status"], "failed")
        self.assertEqual(hog.get("event"), "resource")
        self.assertRegex(hog["error"], r"^exceeded its memory limit of 64 MiB \(exit code 1\): MemoryError")
        self.assertEqual(hog["resources"]["memory"], 64 << 20)
        self.assertEqual(fits["status"], "succeeded")


class RestartTest(unittest.TestCase):
    def restart_with_leftover(self, trap):
        d = Daemon({"leftover.lua": LEFTOVER % {"trap": trap}})
        try:
            d.start()
            run_id = d.ctl_json("run", "leftover")["id"]
            scratch = os.path.join(d.state, "scratch", run_id, "a")
            pid, grandchild = read_pid(os.path.join(scratch, "pid")), read_pid(os.path.join(scratch, "gpid"))
            d.kill9()
            self.assertFalse(gone(pid))  # kill -9 of the daemon leaves its job running...
            start = time.monotonic()
            d.start()  # ...and the next start ends it before it retries the action
            self.assertTrue(gone(pid) and gone(grandchild))
            report = d.ctl_json("inspect", run_id)
            wait_for(lambda: d.ctl_json("inspect", run_id)["status"] == "succeeded", what="the retry to succeed")
            report = d.ctl_json("inspect", run_id)
            self.assertEqual(report["actions"]["a"]["attempts"], 2)
            logs = [l["line"] for l in d.ctl_json("logs", run_id)]
            self.assertIn("attempt 1 interrupted by daemon restart", logs)
            self.assertIn("second attempt", logs)
            self.assertIn("ending process", d.log_text())
            self.assertEqual(d.stop(), 0)
            return time.monotonic() - start
        finally:
            d.cleanup()

    def test_a_restart_ends_the_job_an_earlier_run_left_running(self):
        self.assertLess(self.restart_with_leftover(""), 8)

    def test_a_leftover_that_ignores_sigterm_gets_sigkill(self):
        self.assertGreater(self.restart_with_leftover("trap '' TERM"), 9.5)


if __name__ == "__main__":
    unittest.main(verbosity=2)
