"""luaflowd's own command line: --check on the shipped workflows and on broken ones, --version, and a
config file with an error stopping the start with FILE:LINE."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import LUAFLOWCTL, LUAFLOWD, SOURCE_DIR, Daemon, wait_for  # noqa: E402


def run(*args):
    return subprocess.run([LUAFLOWD, *args], capture_output=True, text=True, timeout=30)


class DaemonCliTest(unittest.TestCase):
    def test_shipped_workflows_pass_check(self):
        p = run("--check", "-c", "/nonexistent.lua", "-w", os.path.join(SOURCE_DIR, "workflows"))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("workflow(s) ok", p.stdout)

    def test_check_reports_every_problem(self):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "good.lua"), "w") as f:
                f.write("return workflow { actions = { a = { run = function() end } } }\n")
            with open(os.path.join(d, "bad.lua"), "w") as f:
                f.write("return workflow {\n  actions = {\n    a = { needs = { 'zz' }, run = function() end },\n  },\n}\n")
            with open(os.path.join(d, "syntax.lua"), "w") as f:
                f.write("return workflow {\n  actions = {\n")
            p = run("--check", "-c", "/nonexistent.lua", "-w", d)
            self.assertEqual(p.returncode, 1)
            lines = p.stdout.splitlines()
            self.assertIn(f"{d}/bad.lua:3: action 'a': needs unknown action 'zz'", lines)
            self.assertTrue(any(l.startswith(f"{d}/syntax.lua:") for l in lines), p.stdout)
            self.assertEqual(len(lines), 2)

    def test_issue_13_validate_and_check_list_every_error_in_source_order(self):
        with tempfile.TemporaryDirectory() as d:
            bad = os.path.join(d, "bad.lua")
            with open(bad, "w") as f:
                f.write("return workflow {\n"
                        "  descriptoin = 'typo',\n"
                        "  schedule = 'FREQ=SOMETIMES',\n"
                        "  actions = {\n"
                        "    z = { shell = 'true', retries = 'x' },\n"
                        "    a = { needs = { 'zz' }, run = function() end },\n"
                        "    m = { cmd = 'not a list' },\n"
                        "  },\n"
                        "  overlap = 'drop',\n"
                        "}\n")
            # A directory named like a workflow is not one: --check skips it, as the daemon does.
            os.mkdir(os.path.join(d, "notes.lua"))
            runs = []
            for _ in range(5):
                p = subprocess.run([LUAFLOWCTL, "--json", "validate", bad], capture_output=True, text=True)
                self.assertEqual(p.returncode, 1, p.stderr)
                doc = json.loads(p.stdout)
                self.assertFalse(doc["ok"])
                runs.append(doc["errors"])
            errors = runs[0]
            self.assertTrue(all(r == errors for r in runs), runs)
            self.assertEqual([e["line"] for e in errors], [2, 3, 5, 6, 7, 9], errors)
            self.assertTrue(all(e["file"] == bad for e in errors))
            self.assertEqual(errors[0]["message"], "unknown field 'descriptoin'")
            self.assertIn("FREQ=SOMETIMES", errors[1]["message"])
            self.assertIn("action 'z': field 'retries'", errors[2]["message"])
            self.assertEqual(errors[3]["message"], "action 'a': needs unknown action 'zz'")
            self.assertIn("action 'm': field 'cmd'", errors[4]["message"])
            self.assertIn("field 'overlap'", errors[5]["message"])
            p = run("--check", "-c", "/nonexistent.lua", "-w", d)
            self.assertEqual(p.returncode, 1)
            self.assertEqual(p.stdout.splitlines(),
                             [f"{bad}:{e['line']}: {e['message']}" for e in errors])

    def test_bad_config_stops_the_start(self):
        with tempfile.TemporaryDirectory() as d:
            cfg = os.path.join(d, "luaflowd.lua")
            with open(cfg, "w") as f:
                f.write('state = "%s"\nsheduler = true\n' % d)
            p = run("-c", cfg, "-w", d, "--socket", os.path.join(d, "s.sock"))
            self.assertEqual(p.returncode, 1)
            self.assertIn(f"{cfg}:2: unknown key 'sheduler'", p.stderr)
            p = run("--check", "-c", cfg, "-w", d)
            self.assertEqual(p.returncode, 1)
            self.assertIn(f"{cfg}:2: unknown key 'sheduler'", p.stdout)

    def test_issue_13_relative_paths_are_resolved_at_start(self):
        # Started from the project directory with relative -c/-w/-s/--socket: subprocess actions run in
        # their scratch directory and still find LUAFLOW_INPUT and LUAFLOW_OUTPUT; the log names the
        # absolute paths.
        d = Daemon({"sub.lua": r"""
            return workflow { actions = {
              a = { cmd = { "/bin/sh", "-c",
                    [[grep -q '"n": *7' "$LUAFLOW_INPUT" && echo '{"read": true}' > "$LUAFLOW_OUTPUT"]] } },
              b = { needs = { "a" }, shell = [[test -s "$LUAFLOW_INPUT"]] },
            } }
        """}, config='sandbox = { paths = { "data" } }\n')
        try:
            root = os.path.realpath(d.dir)
            with open(d.log, "a") as logf:
                d.proc = subprocess.Popen(
                    [os.path.abspath(LUAFLOWD), "-c", "luaflowd.lua", "-w", "workflows", "-s", "./state",
                     "--socket", "luaflowd.sock"], cwd=d.dir, stdout=logf, stderr=logf)
            wait_for(lambda: d.ctl("status")[0] == 0, timeout=15, what="the socket to answer")
            report = d.ctl_json("run", "sub", "--input", '{"n": 7}', "--wait")
            self.assertEqual(report["status"], "succeeded", report)
            self.assertEqual(report["actions"]["a"]["output"], {"read": True})
            log = d.log_text()
            self.assertIn(f"config {root}/luaflowd.lua, state directory {root}/state", log)
            self.assertIn(f"loaded from {root}/workflows", log)
            self.assertIn(f"listening on {root}/luaflowd.sock", log)
            self.assertEqual(d.stop(), 0, d.log_text())
        finally:
            d.cleanup()

    def test_version_and_usage(self):
        p = run("--version")
        self.assertEqual(p.returncode, 0)
        self.assertRegex(p.stdout, r"^luaflowd \d+\.\d+\.\d+")
        self.assertEqual(run("--bogus").returncode, 2)

    def test_luaflowctl_runs_validate_and_test_in_luaflowd_offline(self):
        hello = os.path.join(SOURCE_DIR, "workflows", "hello.lua")
        p = run("--offline", json.dumps({"command": "validate", "files": [hello]}))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout), {"ok": True, "errors": []})
        p = run("--offline", json.dumps({"command": "test", "file": hello, "input": {"name": "there"}}))
        self.assertEqual(json.loads(p.stdout)["report"]["actions"]["greet"]["output"], {"greeting": "hello, there"})
        # The request may come on standard input instead (luaflowctl sends it so: no argument size limit).
        p = subprocess.run([LUAFLOWD, "--offline"], input=json.dumps({"command": "validate", "files": [hello]}),
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(json.loads(p.stdout), {"ok": True, "errors": []})
        self.assertEqual(run("--offline", "[1]").returncode, 2)
        self.assertEqual(run("--offline", "frobnicate").returncode, 2)
        # Without $LUAFLOWD, luaflowctl finds the luaflowd built next to it; with a wrong one it says so.
        env = {k: v for k, v in os.environ.items() if k != "LUAFLOWD"}
        if os.path.dirname(os.path.abspath(LUAFLOWCTL)) == os.path.dirname(os.path.abspath(LUAFLOWD)):
            p = subprocess.run([LUAFLOWCTL, "--json", "validate", hello], capture_output=True, text=True, env=env)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertTrue(json.loads(p.stdout)["ok"])
        env["LUAFLOWD"] = "/nonexistent/luaflowd"
        p = subprocess.run([LUAFLOWCTL, "validate", hello], capture_output=True, text=True, env=env)
        self.assertEqual(p.returncode, 1)
        self.assertIn("cannot run /nonexistent/luaflowd", p.stderr)
        # luaflowctl itself links none of the engine: no LuaJIT, libcurl, libical or SQLite to load.
        libs = subprocess.run(["ldd", LUAFLOWCTL], capture_output=True, text=True).stdout
        for lib in ("libluajit", "libcurl", "libical", "libsqlite3"):
            self.assertNotIn(lib, libs)


if __name__ == "__main__":
    unittest.main()
