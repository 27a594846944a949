"""Subprocess actions on an ssh host (SPEC 2 `hosts`, SPEC 3) against a real sshd on 127.0.0.1 (PEERS.md):
LUAFLOW_INPUT and LUAFLOW_OUTPUT across the connection, the host's GPUs in CUDA_VISIBLE_DEVICES, logs
streaming live with --follow, inspect naming the host, cancel reaching the remote process group, and a
host that cannot be reached failing with ssh's reason. The remote machine is this one, so the test sees
the remote processes and files."""
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import LUAFLOWCTL, Daemon, finish, gone, read_text, wait_for  # noqa: E402

SSHD = os.environ.get("LUAFLOW_TEST_SSHD") or "/usr/sbin/sshd"  # another path tries the missing-peer case
PY = "/usr/bin/python3"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]






class Sshd:
    """sshd -D on a free port in a temp directory, with a client key it accepts."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="luaflow-sshd-")
        self.port = free_port()
        self.key = os.path.join(self.dir, "clientkey")
        for name in ("hostkey", "clientkey"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(self.dir, name)],
                           check=True)
        shutil.copy(self.key + ".pub", os.path.join(self.dir, "authorized_keys"))
        os.makedirs("/run/sshd", exist_ok=True)
        config = os.path.join(self.dir, "sshd_config")
        with open(config, "w") as f:
            f.write(f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.dir}/hostkey\n"
                    f"AuthorizedKeysFile {self.dir}/authorized_keys\nPasswordAuthentication no\n"
                    f"KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPidFile {self.dir}/sshd.pid\n")
        self.proc = subprocess.Popen([SSHD, "-D", "-f", config, "-E", os.path.join(self.dir, "sshd.log")])

        def listening():
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0
        wait_for(listening, timeout=10, what="sshd to listen")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


# The remote job's files are under the remote TMPDIR: each action says where, and what it saw.
WORK = r"""
return workflow {
  input = { word = { type = "string", default = "hello" } },
  actions = {
    first = { run = function() return { n = 41 } end },
    remote = {
      needs = { "first" },
      host = "box",
      resources = { gpus = 2 },
      env = { EXTRA = "it's $added" },
      cmd = { "%(py)s", "-c", [[
import json, os, sys
doc = json.load(open(os.environ["LUAFLOW_INPUT"]))
out = {"n": doc["outputs"]["first"]["n"] + 1, "word": doc["input"]["word"], "arg": sys.argv[1],
       "extra": os.environ["EXTRA"], "gpus": os.environ.get("CUDA_VISIBLE_DEVICES"),
       "scratch": os.environ["LUAFLOW_SCRATCH"], "cwd": os.getcwd(), "input": os.environ["LUAFLOW_INPUT"],
       "job": os.environ["LUAFLOW_JOB"], "path": os.environ["PATH"]}
json.dump(out, open(os.environ["LUAFLOW_OUTPUT"], "w"))
print("done on the remote side")
]], "a b; 'c' {{ input.word }}" },
    },
    plain = { host = "box", needs = { "remote" }, shell = "echo no output file; echo to stderr >&2" },
    nogpu = { host = "box", shell = 'echo "[${CUDA_VISIBLE_DEVICES-unset}]"' },
    check = { needs = { "remote" }, run = function(ctx) return ctx.outputs.remote.n * 10 end },
  },
}
""" % {"py": PY}

FOLLOW = r"""
return workflow { actions = { a = { host = "box", shell = [[
echo first
while [ ! -e "$GO" ]; do sleep 0.05; done
echo second
]], env = { GO = "%(go)s" } } } }
"""

HANG = r"""
return workflow { actions = { a = { host = "box", shell = [[
sleep 60 & echo $! > "$PIDS/grandchild"
echo $$ > "$PIDS/leader"
wait
]], env = { PIDS = "%(pids)s" } } } }
"""

# The grandchild leaves the remote session and holds the job's stdout; the shell exits at once.
DETACHED = r"""
return workflow { actions = { a = { host = "box", timeout = "60s", shell = [[
setsid sh -c 'echo $$ > "$PIDS/detached.tmp"; mv "$PIDS/detached.tmp" "$PIDS/detached"; exec sleep 1239' &
while [ ! -s "$PIDS/detached" ]; do sleep 0.01; done
echo started
]], env = { PIDS = "%(pids)s" } } } }
"""

FAILS = r"""
return workflow { actions = {
  code = { host = "box", shell = "echo before; echo 'bad row 12' >&2; echo >&2; exit 3" },
  refused = { host = "refused", shell = "true" },
  denied = { host = "denied", shell = "true" },
} }
"""


class SshTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(SSHD, os.X_OK):
            harness.missing_peer(f"needs {SSHD} (package openssh-server)")
        cls.sshd = Sshd()
        cls.tmp = tempfile.mkdtemp(prefix="luaflow-ssh-it-")
        cls.go = os.path.join(cls.tmp, "go")
        cls.pids = os.path.join(cls.tmp, "pids")
        os.makedirs(cls.pids)
        other = os.path.join(cls.tmp, "otherkey")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other], check=True)
        cls.refused_port = free_port()  # nothing listens there
        cls.user = pwd.getpwuid(os.geteuid()).pw_name
        opts = '{ "StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null" }'
        host = f'ssh = "{cls.user}@127.0.0.1", ssh_options = {opts}'
        config = ('shutdown_grace = "2s"\n'
                  'env = { pass = { "PATH" } }\n'
                  'hosts = {\n'
                  f'  box = {{ {host}, port = {cls.sshd.port}, identity = "{cls.sshd.key}", gpus = {{ "0", "1" }} }},\n'
                  f'  refused = {{ {host}, port = {cls.refused_port} }},\n'
                  f'  denied = {{ {host}, port = {cls.sshd.port}, identity = "{other}" }},\n'
                  '}\n')
        cls.d = Daemon({"work.lua": WORK, "follow.lua": FOLLOW % {"go": cls.go},
                        "hang.lua": HANG % {"pids": cls.pids}, "fails.lua": FAILS,
                        "detached.lua": DETACHED % {"pids": cls.pids}}, config).start()

    @classmethod
    def tearDownClass(cls):
        try:
            finish(cls.d)
        finally:
            cls.sshd.stop()
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_input_and_output_files_cross_and_inspect_names_the_host(self):
        report = self.d.ctl_json("run", "work", "-i", "word=there", "--wait")
        self.assertEqual(report["status"], "succeeded", json.dumps(report, indent=1))
        remote = report["actions"]["remote"]
        out = remote["output"]
        self.assertEqual(out["n"], 42)
        self.assertEqual(out["word"], "there")
        self.assertEqual(out["arg"], "a b; 'c' there")
        self.assertEqual(out["extra"], "it's $added")
        self.assertEqual(out["gpus"], "0,1")
        self.assertEqual(remote["host"], "box")
        self.assertEqual(remote["resources"]["gpus"], ["0", "1"])
        # The remote side works in its own job directory, the default cwd, removed at the end.
        scratch = out["scratch"]
        self.assertIn("luaflow", os.path.basename(scratch))
        self.assertNotEqual(os.path.realpath(scratch),
                            os.path.realpath(os.path.join(self.d.state, "scratch", report["id"], "remote")))
        self.assertEqual(os.path.realpath(out["cwd"]), os.path.realpath(scratch))
        self.assertTrue(out["input"].startswith(scratch + "/"))
        self.assertFalse(os.path.exists(scratch))
        self.assertEqual(out["job"], f"{report['id']}/remote/1")
        self.assertEqual(report["actions"]["check"]["output"], 420)
        self.assertEqual(report["actions"]["plain"]["output"], {"exit_code": 0})
        logs = self.d.ctl_json("logs", report["id"], "--action", "plain")
        self.assertEqual([(l["stream"], l["line"]) for l in logs],
                         [("stdout", "no output file"), ("stderr", "to stderr")])
        logs = self.d.ctl_json("logs", report["id"], "--action", "remote")
        self.assertEqual([l["line"] for l in logs], ["done on the remote side"])
        # The host has GPUs: an action that holds none sees none there either.
        logs = self.d.ctl_json("logs", report["id"], "--action", "nogpu")
        self.assertEqual([l["line"] for l in logs], ["[]"])

    def test_follow_shows_lines_while_the_remote_program_runs(self):
        run_id = self.d.ctl_json("run", "follow")["id"]
        p = subprocess.Popen([LUAFLOWCTL, "--socket", self.d.socket, "--json", "logs", run_id, "--follow"],
                             stdout=subprocess.PIPE, text=True)
        try:
            first = json.loads(p.stdout.readline())
            self.assertEqual((first["stream"], first["line"]), ("stdout", "first"))
            # The remote program is still waiting for this file: the line came live.
            self.assertEqual(self.d.ctl_json("inspect", run_id)["actions"]["a"]["status"], "running")
            open(self.go, "w").close()
            second = json.loads(p.stdout.readline())
            self.assertEqual(second["line"], "second")
            self.assertEqual(p.wait(timeout=15), 0)  # --follow ends with the execution
        finally:
            p.kill()
            p.stdout.close()
        self.assertEqual(self.d.ctl_json("inspect", run_id)["status"], "succeeded")

    def test_cancel_reaches_the_remote_process_group(self):
        run_id = self.d.ctl_json("run", "hang")["id"]
        grandchild = int(wait_for(lambda: read_text(os.path.join(self.pids, "grandchild")).strip(), timeout=15,
                                  what="the remote program to start"))
        leader = int(wait_for(lambda: read_text(os.path.join(self.pids, "leader")).strip(), timeout=5,
                              what="the remote program to start"))
        self.assertFalse(gone(grandchild))
        self.assertEqual(self.d.ctl_json("cancel", run_id)["status"], "cancelled")
        wait_for(lambda: gone(grandchild) and gone(leader), timeout=8,
                 what=f"the remote group ({leader}, {grandchild}) to be stopped")
        report = self.d.ctl_json("inspect", run_id)
        self.assertEqual(report["actions"]["a"]["status"], "cancelled")
        self.assertEqual(report["actions"]["a"]["host"], "box")

    def test_a_detached_remote_grandchild_neither_holds_the_job_nor_outlives_it(self):
        start = time.monotonic()
        report = self.d.ctl_json("run", "detached", "--wait", timeout=60)
        took = time.monotonic() - start
        sleeper = int(read_text(os.path.join(self.pids, "detached")).strip())
        try:
            self.assertEqual(report["actions"]["a"]["status"], "succeeded", report)
            self.assertLess(took, 15)  # not the 60 s timeout
            # The remote side ended it by its LUAFLOW_JOB: the local ssh carries no marker scan.
            wait_for(lambda: gone(sleeper), timeout=15, what=f"the detached remote sleeper {sleeper} to be ended")
            logs = self.d.ctl_json("logs", report["id"])
            self.assertEqual([l["line"] for l in logs], ["started"])
        finally:
            if not gone(sleeper):
                os.kill(sleeper, signal.SIGKILL)

    def test_failures_name_the_host_and_the_reason(self):
        report = self.d.ctl_json("run", "fails", "--wait", expect_rc=1)
        a = report["actions"]
        self.assertEqual((a["code"]["status"], a["code"]["error"]), ("failed", "exit code 3: bad row 12"))
        where = f"ssh {self.user}@127.0.0.1 port "
        self.assertEqual(a["refused"]["status"], "failed")
        self.assertEqual(a["refused"]["error"], f"{where}{self.refused_port}: connect to host 127.0.0.1 port "
                                                f"{self.refused_port}: Connection refused")
        self.assertEqual(a["refused"]["host"], "refused")
        self.assertEqual(a["denied"]["error"], f"{where}{self.sshd.port}: Permission denied (publickey)")
        self.assertEqual(self.d.ctl("status")[0], 0)


if __name__ == "__main__":
    harness.main()
