"""The control socket and luaflowctl: garbage and vanished clients never hurt the daemon; exit codes;
enable/disable kept across restarts; offline validate and test."""
import json
import os
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import LUAFLOWCTL, DaemonTest, wait_for  # noqa: E402

ECHO = """
return workflow { actions = { a = { run = function(ctx) log.info("echo %s", ctx.input.x); return ctx.input end } } }
"""


SLOW = "return workflow { actions = { a = { run = function() sleep(30) end } } }"


class ControlTest(DaemonTest):
    WORKFLOWS = {"echo.lua": ECHO, "slow.lua": SLOW}

    def raw(self, payload, read=True, lines=1):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.d.socket)
        s.sendall(payload)
        data = b""
        if read:
            s.settimeout(5)
            while not (data.endswith(b"\n") and data.count(b"\n") >= lines):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        s.close()
        return data

    def test_garbage_and_vanished_clients(self):
        answer = json.loads(self.raw(b"this is not json\n"))
        self.assertEqual(answer["error"]["code"], "invalid")
        answer = json.loads(self.raw(b'{"id": 7, "method": "nope"}\n'))
        self.assertEqual(answer["id"], 7)
        self.assertIn("unknown method", answer["error"]["message"])
        answer = json.loads(self.raw(b'{"id": 1, "method": "inspect", "params": {"execution": 5}}\n'))
        self.assertEqual(answer["error"]["code"], "invalid")
        self.raw(b"\x00\xff" * 50000, read=False)
        # Vanish in the middle of a follow, and idle clients left open.
        run_id = self.d.ctl_json("run", "echo", "-i", "x=1")["id"]
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.d.socket)
        s.sendall(json.dumps({"id": 1, "method": "logs", "params": {"execution": run_id, "follow": True}}).encode() + b"\n")
        s.close()
        idle = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(20)]
        for c in idle:
            c.connect(self.d.socket)
        self.assertEqual(self.d.ctl_json("status")["workflows"], 2)
        for c in idle:
            c.close()

    def test_pipelined_requests_answer_in_order(self):
        lines = b"".join(json.dumps({"id": i, "method": "run", "params": {"workflow": "echo"}}).encode() + b"\n"
                         for i in range(50))
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.d.socket)
        s.sendall(lines)
        data = b""
        s.settimeout(10)
        while data.count(b"\n") < 50:
            data += s.recv(65536)
        s.close()
        ids = [json.loads(l)["id"] for l in data.splitlines()]
        self.assertEqual(ids, list(range(50)))

    def test_an_inspect_behind_a_cancel_on_one_connection_shows_the_cancel(self):
        # inspect is read off the loop, from the store as committed: after the commit of the turn that
        # read it, so what the request before it changed is there.
        eid = self.d.ctl_json("run", "slow")["id"]
        wait_for(lambda: self.d.ctl_json("inspect", eid)["actions"]["a"]["status"] == "running",
                 what="the action to run")
        data = self.raw((json.dumps({"id": 1, "method": "cancel", "params": {"execution": eid}}) + "\n" +
                         json.dumps({"id": 2, "method": "inspect", "params": {"execution": eid}}) + "\n"
                         ).encode(), lines=2)
        cancel, inspect = [json.loads(line) for line in data.splitlines()]
        self.assertEqual(cancel["result"]["status"], "cancelled", cancel)
        self.assertEqual(inspect["result"]["status"], "cancelled", inspect)
        self.assertEqual(inspect["result"]["actions"]["a"]["status"], "cancelled", inspect)

    def test_exit_codes(self):
        self.assertEqual(self.d.ctl("frobnicate")[0], 2)
        self.assertEqual(self.d.ctl("run", "echo", "--input", "{not json")[0], 2)
        self.assertEqual(self.d.ctl("inspect", "ffffffffffff")[0], 1)
        self.assertEqual(self.d.ctl("run", "missing")[0], 1)
        p = subprocess.run([LUAFLOWCTL, "--socket", os.path.join(self.d.dir, "nothing.sock"), "status"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 3)
        env = dict(os.environ, LUAFLOW_SOCKET=self.d.socket)
        p = subprocess.run([LUAFLOWCTL, "--json", "status"], capture_output=True, text=True, env=env)
        self.assertEqual(p.returncode, 0)

    def test_issue_13_unknown_action_or_workflow_is_an_error(self):
        report = self.run_wait("echo", "-i", "x=1")
        eid = report["id"]
        rc, out, err = self.d.ctl("logs", eid, "--action", "nosuch")
        self.assertEqual((rc, out), (1, ""))
        self.assertIn(f"no action 'nosuch' in execution {eid}", err)
        rc, out, err = self.d.ctl("logs", eid, "--action", "nosuch", "--follow")
        self.assertEqual(rc, 1)
        self.assertIn("no action 'nosuch'", err)
        self.assertEqual(self.d.ctl_json("logs", eid, "--action", "a")[0]["line"], "echo 1")
        rc, out, err = self.d.ctl("ps", "--workflow", "nosuch")
        self.assertEqual((rc, out), (1, ""))
        self.assertIn("no workflow 'nosuch'", err)
        self.assertEqual(self.d.ctl("--json", "executions", "--workflow", "nosuch")[0], 1)
        # A known workflow without matches is an empty list, not an error.
        self.assertEqual(self.d.ctl_json("executions", "--workflow", "echo", "--status", "failed"), [])
        # A workflow whose file is gone still lists the executions the store holds.
        os.remove(os.path.join(self.d.workflows, "echo.lua"))
        wait_for(lambda: self.d.ctl_json("status")["workflows"] == 1, what="echo to be unloaded")
        self.assertEqual([e["id"] for e in self.d.ctl_json("executions", "--workflow", "echo")], [eid])

    def test_issue_13_test_takes_input_as_run_does(self):
        good = os.path.join(self.d.workflows, "echo.lua")
        env = dict(os.environ, LUAFLOW_SOCKET="/nonexistent")
        infile = os.path.join(self.d.dir, "input.json")
        with open(infile, "w") as f:
            f.write('{"x": "from file", "y": 1}')
        for args, want in ((["--input-file", infile], {"x": "from file", "y": 1}),
                           (["--input-file", infile, "-i", "x=7", "-i", "z=word"], {"x": 7, "y": 1, "z": "word"}),
                           (["--input-file", "-"], {"x": "stdin"})):
            p = subprocess.run([LUAFLOWCTL, "--json", "test", good, *args], capture_output=True, text=True, env=env,
                               input='{"x": "stdin"}')
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(json.loads(p.stdout)["report"]["actions"]["a"]["output"], want)
        p = subprocess.run([LUAFLOWCTL, "test", good, "--input", "{}", "--input-file", infile],
                           capture_output=True, text=True, env=env)
        self.assertEqual(p.returncode, 2)
        self.assertIn("give --input or --input-file, not both", p.stderr)
        p = subprocess.run([LUAFLOWCTL, "test", good, "-i", "novalue"], capture_output=True, text=True, env=env)
        self.assertEqual(p.returncode, 2)
        self.assertIn("test: -i needs KEY=VALUE, got 'novalue'", p.stderr)

    def test_run_follow_streams_logs(self):
        rc, out, err = self.d.ctl("--json", "run", "echo", "-i", "x=42", "--follow")
        self.assertEqual(rc, 0, err)
        docs = [json.loads(l) for l in out.splitlines() if l.strip()]
        self.assertEqual(docs[0]["line"], "echo 42")
        self.assertEqual(docs[-1]["status"], "succeeded")
        self.assertEqual(docs[-1]["actions"]["a"]["output"], {"x": 42})

    def test_disable_survives_restart(self):
        self.assertEqual(self.d.ctl_json("disable", "echo"), {"id": "echo", "enabled": False})
        rc, _, err = self.d.ctl("run", "echo")
        self.assertEqual(rc, 1)
        self.assertIn("disabled", err)
        self.d.stop()
        self.d.start()
        self.assertFalse(next(w for w in self.d.ctl_json("list") if w["id"] == "echo")["enabled"])
        self.d.ctl_json("enable", "echo")
        self.assertEqual(self.run_wait("echo")["status"], "succeeded")

    def test_validate_and_test_offline(self):
        good = os.path.join(self.d.workflows, "echo.lua")
        bad = os.path.join(self.d.dir, "bad.lua")
        with open(bad, "w") as f:
            f.write("return workflow {\n  actions = {\n    a = { needs = { 'b' }, run = function() end },\n  },\n}\n")
        p = subprocess.run([LUAFLOWCTL, "--json", "validate", good, bad], capture_output=True, text=True)
        self.assertEqual(p.returncode, 1)
        doc = json.loads(p.stdout)
        self.assertFalse(doc["ok"])
        self.assertEqual([(e["file"], e["line"]) for e in doc["errors"]], [(bad, 3)])
        p = subprocess.run([LUAFLOWCTL, "--json", "test", good, "--input", '{"x": 5}'], capture_output=True, text=True,
                           env=dict(os.environ, LUAFLOW_SOCKET="/nonexistent"))
        self.assertEqual(p.returncode, 0, p.stderr)
        doc = json.loads(p.stdout)
        self.assertTrue(doc["ok"])
        self.assertEqual(doc["report"]["actions"]["a"]["output"], {"x": 5})


if __name__ == "__main__":
    unittest.main()
