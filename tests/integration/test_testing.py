"""Testing before activation (SPEC 13): `luaflowctl test FILE` with the config, the sibling workflows, log
lines as they come, mocks, --at and --fast; test case files with every kind of expectation, passing and
failing; --json and --junit; exit codes 0/1/2; and `validate -c`."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import LUAFLOWCTL, SOURCE_DIR, Daemon, main  # noqa: E402
from notify_peers import WebhookPeer  # noqa: E402

GPU_JOB = """
return workflow {
  actions = {
    train = { resources = { gpus = 1 }, shell = "echo gpu=$CUDA_VISIBLE_DEVICES" },
    helper = { needs = { "train" }, run = function(ctx)
      local report = workflows.run("child", { n = 2 }, { wait = true })
      return { doubled = report.actions.double.output.n, secret = env("API_KEY") }
    end },
  },
}
"""

CHILD = """
return workflow {
  input = { n = { type = "number" } },
  actions = { double = { run = function(ctx)
    log.info("doubling %d", ctx.input.n)
    return { n = ctx.input.n * 2 }
  end } },
}
"""

CHATTY = """
return workflow {
  actions = {
    talk = { shell = "echo first line; sleep 0.6; echo second line" },
  },
}
"""

# A side effect per real run, so that a test can see that a mocked action ran nothing.
EFFECTS = """
return workflow {
  input = { mark = { type = "string" } },
  retries = 2, retry_delay = "1s",
  actions = {
    fetch = { cmd = { "sh", "-c", "touch \\"$1\\"; echo '{\\"rows\\": 5}' > $LUAFLOW_OUTPUT",
                      "sh", "{{ input.mark }}" } },
    count = { needs = { "fetch" }, run = function(ctx) return { rows = ctx.outputs.fetch.rows + 1 } end },
  },
}
"""

CLOCK = """
return workflow {
  actions = {
    a = { run = function(ctx)
      return { now = time.now(), os_time = os.time(), scheduled_for = ctx.execution.scheduled_for,
               trigger = ctx.execution.trigger.type }
    end },
  },
}
"""

# An hour of sleeps and retries ten minutes apart: milliseconds with --fast.
HOUR = """
return workflow {
  timeout = "3h",
  actions = {
    nap = { timeout = "2h", run = function(ctx)
      local t0 = time.now()
      sleep(1800)
      return { t0 = t0, t1 = time.now() }
    end },
    flaky = { needs = { "nap" }, retries = 3, retry_delay = "10m", backoff = "fixed", run = function(ctx)
      local n = kv.get("tries") or 0
      kv.set("tries", n + 1)
      if n < 3 then error("not yet") end
      return { tries = n + 1, at = time.now() }
    end },
  },
}
"""

NOTIFYING = """
return workflow {
  notify = { failure = { "hook" } },
  actions = { boom = { run = function(ctx) error("broken on purpose") end } },
}
"""


def ctl(*args, cwd=None, timeout=120):
    return subprocess.run([LUAFLOWCTL, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout)


class TestFileTest(unittest.TestCase):
    """test FILE: the engine as the daemon has it, offline."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="luaflow-testing-")
        self.wf = os.path.join(self.dir, "workflows")
        os.makedirs(self.wf)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def write(self, name, text):
        path = os.path.join(self.wf, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    def config(self, text):
        path = os.path.join(self.dir, "luaflowd.lua")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_config_hosts_secrets_and_sibling_workflows(self):
        job = self.write("gpu-job.lua", GPU_JOB)
        self.write("child.lua", CHILD)
        with open(os.path.join(self.dir, "api_key"), "w") as f:
            f.write("s3cret\n")
        # Without the config: the host has no GPUs (the complaint), and no secret.
        p = ctl("--json", "test", job)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("host local has no GPUs", json.loads(p.stdout)["report"]["actions"]["train"]["error"])
        cfg = self.config('hosts = { ["local"] = { gpus = { "0", "1" } } }\n'
                          f'env = {{ secrets = {{ API_KEY = "{self.dir}/api_key" }} }}\n')
        p = ctl("--json", "test", job, "-c", cfg)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        report = json.loads(p.stdout)["report"]
        self.assertEqual(report["actions"]["train"]["status"], "succeeded")
        self.assertEqual(report["actions"]["helper"]["output"]["doubled"], 4)
        # The secret reached the action, and is masked wherever it is written.
        self.assertNotIn("s3cret", p.stdout)
        # Log lines come on stderr, the child's too.
        self.assertIn("gpu=0", p.stderr)
        self.assertIn("doubling 2", p.stderr)
        # A config that does not load is named.
        bad = self.config("hosts = 5\n")
        p = ctl("--json", "test", job, "-c", bad)
        self.assertEqual(p.returncode, 1)
        [err] = json.loads(p.stdout)["errors"]
        self.assertEqual(err["file"], bad)

    def test_log_lines_come_as_they_are_written(self):
        path = self.write("chatty.lua", CHATTY)
        proc = subprocess.Popen([LUAFLOWCTL, "test", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        start = time.monotonic()
        first = proc.stderr.readline()
        first_at = time.monotonic() - start
        rest, _ = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, 0)
        self.assertIn("talk#1  stdout  first line", first)
        # The first line was there before the action ended (it sleeps 0.6 s after it).
        self.assertLess(first_at, time.monotonic() - start - 0.3)
        self.assertIn("succeeded", rest)

    def test_notifications_are_recorded_never_sent(self):
        peer = WebhookPeer(self.dir)
        try:
            cfg = self.config(f'notifiers = {{ hook = {{ webhook = {{ url = "{peer.url()}" }} }} }}\n'
                              'notify = { failure = { "hook" } }\n')
            path = self.write("notifying.lua", NOTIFYING)
            p = ctl("--json", "test", path, "-c", cfg)
            self.assertEqual(p.returncode, 1, p.stderr)
            notes = json.loads(p.stdout)["report"]["notifications"]
            # The global rule and the workflow's name the same notifier: one notification.
            self.assertEqual([(n["notifier"], n["event"], n["status"]) for n in notes],
                             [("hook", "failure", "recorded")])
            time.sleep(0.5)
            self.assertEqual(peer.requests(), [])
            # With the config read, a rule naming a notifier it lacks is a load error, as in the daemon.
            p = ctl("--json", "test", path, "-c", self.config("\n"))
            self.assertEqual(p.returncode, 1)
            self.assertIn("hook", json.loads(p.stdout)["errors"][0]["message"])
        finally:
            peer.stop()

    def test_mocks_run_nothing_and_feed_what_follows(self):
        path = self.write("effects.lua", EFFECTS)
        mark = os.path.join(self.dir, "ran")
        p = ctl("--json", "test", path, "-i", f"mark={mark}", "--mock", 'fetch={"rows": 41}')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        report = json.loads(p.stdout)["report"]
        self.assertEqual(report["actions"]["fetch"]["output"], {"rows": 41})
        self.assertEqual(report["actions"]["count"]["output"], {"rows": 42})
        self.assertFalse(os.path.exists(mark), "a mocked action ran its command")
        # A failing mock is retried like any failure, then fails the run; --fast skips the delays.
        p = ctl("--json", "test", path, "-i", f"mark={mark}", "--mock", "fetch=error:the database is down", "--fast")
        self.assertEqual(p.returncode, 1)
        report = json.loads(p.stdout)["report"]
        self.assertEqual(report["status"], "failed")
        self.assertEqual(report["actions"]["fetch"]["attempts"], 3)
        self.assertIn("the database is down", report["actions"]["fetch"]["error"])
        self.assertEqual(report["actions"]["count"]["status"], "skipped")
        self.assertFalse(os.path.exists(mark))
        # Without the mock it runs for real.
        p = ctl("--json", "test", path, "-i", f"mark={mark}")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertTrue(os.path.exists(mark))
        # Mistakes in --mock are usage errors.
        for bad in ["fetch", "=1", "fetch={not json"]:
            p = ctl("test", path, "--mock", bad)
            self.assertEqual(p.returncode, 2, bad)
            self.assertIn("--mock", p.stderr)

    def test_at_runs_as_scheduled_for_that_time(self):
        path = self.write("clock.lua", CLOCK)
        p = ctl("--json", "test", path, "--at", "2030-01-02T03:04:05+01:00")
        self.assertEqual(p.returncode, 0, p.stderr)
        report = json.loads(p.stdout)["report"]
        out = report["actions"]["a"]["output"]
        self.assertEqual(out["trigger"], "schedule")
        self.assertEqual(report["trigger"]["type"], "schedule")
        at = 1893549845  # 2030-01-02T02:04:05Z
        self.assertTrue(at <= out["now"] < at + 5, out)
        self.assertTrue(at <= out["os_time"] < at + 5, out)
        self.assertIn("2030-01-02", out["scheduled_for"])
        self.assertEqual(ctl("test", path, "--at", "tomorrow").returncode, 2)

    def test_fast_skips_an_hour_of_sleeps_and_retries(self):
        path = self.write("hour.lua", HOUR)
        started = time.monotonic()
        p = ctl("--json", "test", path, "--fast")
        took = time.monotonic() - started
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertLess(took, 1.0 if not os.environ.get("LUAFLOW_SANITIZED") else 5.0)
        actions = json.loads(p.stdout)["report"]["actions"]
        nap, flaky = actions["nap"]["output"], actions["flaky"]["output"]
        self.assertAlmostEqual(nap["t1"] - nap["t0"], 1800, delta=1)
        self.assertEqual(flaky["tries"], 4)
        # Half an hour asleep, then three waits of ten minutes: time.now() is an hour on.
        self.assertAlmostEqual(flaky["at"] - nap["t0"], 3600, delta=2)
        self.assertEqual(actions["flaky"]["attempts"], 4)
        # The log's times follow the same clock: the retries are ten minutes apart there too.
        self.assertEqual(p.stderr.count("retrying in 10m"), 3)

    def test_fast_keeps_the_order_of_real_work_and_timeouts(self):
        # A subprocess takes real time; a timeout on the virtual clock still fires after a sleep longer
        # than it, not before the real work ends.
        path = self.write("order.lua", """
return workflow {
  actions = {
    real = { shell = "sleep 0.3; echo real done" },
    nap = { timeout = "5m", run = function(ctx) sleep(600) return {} end },
    after_real = { needs = { "real" }, run = function(ctx) return { at = time.now() } end },
  },
}
""")
        p = ctl("--json", "test", path, "--fast")
        self.assertEqual(p.returncode, 1, p.stderr)
        actions = json.loads(p.stdout)["report"]["actions"]
        self.assertEqual(actions["real"]["status"], "succeeded")
        self.assertEqual(actions["after_real"]["status"], "succeeded")
        self.assertEqual(actions["nap"]["status"], "timed_out")

    def test_validate_reads_the_config(self):
        path = self.write("notifying.lua", NOTIFYING)
        self.assertEqual(ctl("validate", path).returncode, 0)  # no config: notifiers cannot be checked
        p = ctl("--json", "validate", "-c", self.config("\n"), path)
        self.assertEqual(p.returncode, 1)
        [err] = json.loads(p.stdout)["errors"]
        self.assertIn("'hook'", err["message"])
        cfg = self.config('notifiers = { hook = { webhook = { url = "http://127.0.0.1:9/x" } } }\n')
        self.assertEqual(ctl("validate", "-c", cfg, path).returncode, 0)

    def test_a_missing_temporary_directory_is_named(self):
        path = self.write("notifying.lua", NOTIFYING)
        env = dict(os.environ, TMPDIR=os.path.join(self.dir, "no-such-dir"))
        p = subprocess.run([LUAFLOWCTL, "test", path], capture_output=True, text=True, env=env, timeout=120)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("cannot create a temporary state directory: TMPDIR=" + env["TMPDIR"], p.stdout + p.stderr)
        self.assertNotIn("signal", p.stdout + p.stderr)  # it threw, and luaflowd --offline died of SIGABRT


CASES = """
-- cases of shop
return tests {
  { name = "passes", workflow = "shop", input = { stock = 3 },
    expect = { status = "succeeded", outputs = { check = { low = true, items = { "a", "b" } } },
               actions = { reorder = "succeeded" }, logs = { "stock 3" } } },
  { name = "wrong output", workflow = "shop", input = { stock = 3 },
    expect = { outputs = { reorder = { orders = 1 } } } },
  { name = "wrong status", workflow = "shop", input = { stock = 3 }, expect = { status = "failed" } },
  { name = "wrong action status", workflow = "shop", input = { stock = 30 },
    expect = { actions = { reorder = "succeeded" } } },
  { name = "error matches", workflow = "shop", mocks = { check = "error:stock service unreachable" },
    expect = { status = "failed", error = "service %a+" } },
  { name = "error does not match", workflow = "shop", mocks = { check = "error:stock service unreachable" },
    expect = { status = "failed", error = "^disk full" } },
  { name = "missing log", workflow = "shop", input = { stock = 3 }, expect = { logs = { "no such line" } } },
  { name = "list length", workflow = "shop", input = { stock = 3 },
    expect = { outputs = { check = { items = { "a" } } } } },
  { name = "fails without expecting it", workflow = "shop", mocks = { check = "error:down" } },
  { name = "a time and virtual time", workflow = "shop", input = { stock = 3, nap = 7200 },
    at = "2031-05-06T07:08:09Z", fast = true,
    expect = { outputs = { reorder = { orders = 2, slept = 7200 } } } },
}
"""

SHOP = """
return workflow {
  input = { stock = { type = "number", default = 0 }, nap = { type = "number", default = 0 } },
  actions = {
    check = { run = function(ctx)
      log.info("stock %d", ctx.input.stock)
      return { low = ctx.input.stock < 10, items = { "a", "b" } }
    end },
    reorder = { needs = { "check" }, timeout = "3h", when = function(ctx) return ctx.outputs.check.low end,
      run = function(ctx)
        local t0 = time.now()
        if ctx.input.nap > 0 then sleep(ctx.input.nap) end
        return { orders = 2, slept = math.floor(time.now() - t0 + 0.5) }
      end },
  },
}
"""


class CaseFileTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="luaflow-cases-")
        os.makedirs(os.path.join(self.dir, "tests"))
        self.write("shop.lua", SHOP)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_each_expectation_passing_and_failing(self):
        self.write("tests/shop.test.lua", CASES)
        junit = os.path.join(self.dir, "junit.xml")
        p = ctl("--json", "test", self.dir, "--junit", junit)
        self.assertEqual(p.returncode, 1, p.stderr)
        doc = json.loads(p.stdout)
        self.assertFalse(doc["ok"])
        self.assertEqual(doc["errors"], [])
        cases = {c["name"]: c for c in doc["cases"]}
        self.assertEqual(set(cases["passes"]), {"name", "workflow", "file", "line", "ok", "duration_ms", "failures"})
        expected = {
            "passes": [],
            "wrong output": ["outputs.reorder.orders: want 1, got 2"],
            "wrong status": ['status: want "failed", got "succeeded"'],
            "wrong action status": ['actions.reorder: want "succeeded", got "skipped"'],
            "error matches": [],
            "error does not match": ['error: want one matching "^disk full", got "action \'check\' failed" '
                                     '(and 1 action errors)'],
            "missing log": ['logs: no line contains "no such line" (1 lines)'],
            "list length": ['outputs.check.items: want 1 items, got 2 (["a","b"])'],
            "fails without expecting it": ['status: want "succeeded", got "failed" (action \'check\' failed)'],
            "a time and virtual time": [],
        }
        for name, failures in expected.items():
            self.assertEqual(cases[name]["failures"], failures, name)
            self.assertEqual(cases[name]["ok"], not failures, name)
            self.assertEqual(cases[name]["workflow"], "shop")
        # Two hours asleep on the virtual clock took no real time.
        self.assertLess(cases["a time and virtual time"]["duration_ms"], 5000)

        # People get one line per case, the first difference on it.
        p = ctl("test", self.dir)
        self.assertEqual(p.returncode, 1)
        lines = p.stdout.splitlines()
        self.assertIn("FAIL  shop: wrong output: outputs.reorder.orders: want 1, got 2", lines)
        self.assertTrue(any(line.startswith("ok    shop: passes") for line in lines), lines)
        self.assertEqual(lines[-1], "10 cases, 7 failed")

        root = ET.parse(junit).getroot()
        self.assertEqual(root.tag, "testsuites")
        self.assertEqual((root.get("tests"), root.get("failures"), root.get("errors")), ("10", "7", "0"))
        testcases = root.findall("./testsuite/testcase")
        self.assertEqual(len(testcases), 10)
        failed = [t for t in testcases if t.find("failure") is not None]
        self.assertEqual(len(failed), 7)
        wrong = next(t for t in testcases if t.get("name") == "wrong output")
        self.assertEqual(wrong.get("classname"), "shop")
        self.assertEqual(wrong.find("failure").get("message"), "outputs.reorder.orders: want 1, got 2")

    def test_all_passing_exits_0_and_one_case_file_alone(self):
        case = self.write("tests/good.test.lua", """
return tests {
  { name = "one <&\\"'> \\1", workflow = "shop", input = { stock = 3 },
    expect = { outputs = { reorder = { orders = 2 } } } },
}
""")
        self.write("tests/bad.test.lua", 'return tests { { workflow = "shop", expect = { status = "failed" } } }\n')
        p = ctl("test", case)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(p.stdout.splitlines()[-1], "1 case, 0 failed")
        # Names with XML's special characters (and a control character) come through the JUnit file.
        junit = os.path.join(self.dir, "one.xml")
        self.assertEqual(ctl("test", "--junit", junit, case).returncode, 0)
        [t] = ET.parse(junit).getroot().findall("./testsuite/testcase")
        self.assertEqual(t.get("name"), "one <&\"'> \ufffd")
        self.assertIsNone(t.find("failure"))
        self.assertEqual(ctl("test", self.dir).returncode, 1)

    def test_broken_case_files_exit_2_naming_file_and_line(self):
        broken = {
            "syntax.test.lua": ("return tests {\n  { workflow = \"shop\" \n  { }\n}\n", 3, "'}' expected"),
            "field.test.lua": ('\n\nreturn tests { { workflow = "shop", expct = {} } }\n', 3, "unknown field 'expct'"),
            "noworkflow.test.lua": ("return tests { { name = 'x' } }\n", 1, "'workflow' must name"),
            "kind.test.lua": ('return tests { { workflow = "shop", expect = { status = 1 } } }\n', 1,
                              "'expect.status' must be a string"),
            "notests.test.lua": ("return 5\n", 0, "must return tests"),
            "raises.test.lua": ('\nerror("boom")\n', 2, "boom"),
        }
        for name, (text, line, message) in broken.items():
            path = self.write("tests/" + name, text)
            p = ctl("--json", "test", path)
            self.assertEqual(p.returncode, 2, name + p.stdout + p.stderr)
            [err] = json.loads(p.stdout)["errors"]
            self.assertEqual((err["file"], err["line"]), (path, line), name)
            self.assertIn(message, err["message"], name)
            p = ctl("test", path)
            self.assertIn(f"{path}:{line}: " if line else f"{path}: ", p.stdout, name)
        # A missing workflow is a broken case too: no run can pass.
        path = self.write("tests/nowf.test.lua", 'return tests { { workflow = "nope" } }\n')
        p = ctl("--json", "test", path)
        self.assertEqual(p.returncode, 1)
        self.assertIn("there is no workflow 'nope'", json.loads(p.stdout)["cases"][0]["failures"][0])
        # The directory as a whole: the broken files exit 2, and JUnit lists them as errors.
        junit = os.path.join(self.dir, "junit.xml")
        p = ctl("test", "--junit", junit, self.dir)
        self.assertEqual(p.returncode, 2)
        root = ET.parse(junit).getroot()
        self.assertEqual(root.get("errors"), str(len(broken)))

    def test_case_files_are_not_workflows_to_the_daemon(self):
        self.write("tests/shop.test.lua", CASES)
        d = Daemon()
        try:
            for name in ("shop.lua", "tests/shop.test.lua"):
                os.makedirs(os.path.dirname(os.path.join(d.workflows, name)), exist_ok=True)
                shutil.copy(os.path.join(self.dir, name), os.path.join(d.workflows, name))
            d.start()
            ids = [w["id"] for w in d.ctl_json("list")]
            self.assertEqual(ids, ["shop"])
        finally:
            d.stop()
            d.cleanup()

    def test_usage(self):
        self.write("tests/shop.test.lua", CASES)
        self.assertEqual(ctl("test", self.dir, "--mock", "a=1").returncode, 2)
        self.assertEqual(ctl("test", self.dir, "--fast").returncode, 2)
        self.assertEqual(ctl("test", os.path.join(self.dir, "shop.lua"), "--junit", "x.xml").returncode, 2)
        empty = tempfile.mkdtemp(dir=self.dir)
        p = ctl("test", empty)
        self.assertEqual(p.returncode, 2)
        self.assertIn("no test cases", p.stdout)

    def test_the_shipped_examples_pass(self):
        p = ctl("--json", "test", os.path.join(SOURCE_DIR, "workflows"))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        doc = json.loads(p.stdout)
        tested = {c["workflow"] for c in doc["cases"]}
        shipped = {f[:-4] for f in os.listdir(os.path.join(SOURCE_DIR, "workflows")) if f.endswith(".lua")}
        self.assertEqual(tested, shipped, "every example workflow has test cases")


if __name__ == "__main__":
    main()
