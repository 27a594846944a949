"""A real luaflowd in a fresh temp directory, driven by the real luaflowctl (STYLE 2.11).

Tests wait on conditions with deadlines, never with fixed sleeps.
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import textwrap
import time
import unittest

LUAFLOWD = os.environ.get("LUAFLOWD", "build/luaflowd")
LUAFLOWCTL = os.environ.get("LUAFLOWCTL", "build/luaflowctl")
SOURCE_DIR = os.environ.get("LUAFLOW_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(__file__))))


def wait_for(cond, timeout=10.0, interval=0.01, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def gone(pid):
    """No such process, or a zombie waiting for init."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def read_text(path):
    """The file's content, or "" while it does not exist."""
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def read_pid(path, timeout=10):
    """The pid a job wrote to `path` (with `echo $! > path`), once it is there."""
    wait_for(lambda: read_text(path).endswith("\n"), timeout=timeout, what=f"{path} to be written")
    return int(read_text(path))


class Daemon:
    def __init__(self, workflows=None, config=None, grace="5s"):
        self.dir = tempfile.mkdtemp(prefix="luaflow-it-")
        self.workflows = os.path.join(self.dir, "workflows")
        self.state = os.path.join(self.dir, "state")
        self.socket = os.path.join(self.dir, "luaflowd.sock")
        self.config = os.path.join(self.dir, "luaflowd.lua")
        self.log = os.path.join(self.dir, "luaflowd.log")
        os.makedirs(self.workflows)
        with open(self.config, "w") as f:
            f.write(config if config is not None else f'shutdown_grace = "{grace}"\n')
        for name, text in (workflows or {}).items():
            self.write(name, text)
        self.proc = None

    def write(self, name, text):
        path = os.path.join(self.workflows, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(textwrap.dedent(text))
        os.rename(tmp, path)
        return path

    def start(self, env=None):
        """env: variables added to this process's environment for the daemon (NOTIFY_SOCKET, say)."""
        with open(self.log, "a") as logf:
            self.proc = subprocess.Popen(
                [LUAFLOWD, "-c", self.config, "-w", self.workflows, "-s", self.state, "--socket", self.socket],
                stdout=logf, stderr=logf, env={**os.environ, **env} if env else None)
        try:
            wait_for(lambda: self.ctl("status")[0] == 0, timeout=15, what="the socket to answer")
        except AssertionError as e:
            raise AssertionError(f"{e}; luaflowd exit status {self.proc.poll()}; log:\n{self.log_text()[-3000:]}")
        return self

    def start_with_http_api(self, token, http_options="", env=None):
        """Starts the daemon with the HTTP API on a free port of 127.0.0.1, its bearer token in a file (with a
        newline, which is not part of it) and `http_options` (more keys of `http`); the port."""
        self.token_file = os.path.join(self.dir, "token")
        with open(self.token_file, "w") as f:
            f.write(token + "\n")
        with open(self.config, "w") as f:
            f.write(f'shutdown_grace = "2s"\nhttp = {{ listen = "127.0.0.1:0", token_file = "{self.token_file}"'
                    f'{", " + http_options if http_options else ""} }}\n')
        self.start(env=env)
        return int(re.search(r"HTTP API on 127\.0\.0\.1:0 \(port (\d+)\)", self.log_text()).group(1))

    def send_line(self, line):
        """One raw request line over the socket; its answer, parsed (errors included)."""
        import socket as socket_module
        with socket_module.socket(socket_module.AF_UNIX, socket_module.SOCK_STREAM) as s:
            s.connect(self.socket)
            s.sendall(line if isinstance(line, bytes) else line.encode())
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(1 << 20)
                if not chunk:
                    raise AssertionError(f"luaflowd closed the connection on {line[:80]!r}")
                buf += chunk
        return json.loads(buf)

    def call(self, method, params=None):
        """One request over the socket itself (what luaflowctl does), for tests that make many."""
        method_line = json.dumps({"id": 1, "method": method, "params": params or {}}) + "\n"
        reply = self.send_line(method_line)
        if "error" in reply:
            raise AssertionError(f"{method} {params}: {reply['error']}")
        return reply["result"]

    def ctl(self, *args, input_text=None, timeout=60):
        p = subprocess.run([LUAFLOWCTL, "--socket", self.socket, *args], capture_output=True, text=True,
                           input=input_text, timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    def ctl_json(self, *args, expect_rc=0, timeout=60):
        rc, out, err = self.ctl("--json", *args, timeout=timeout)
        if rc != expect_rc:
            raise AssertionError(f"luaflowctl {' '.join(args)}: exit {rc}, expected {expect_rc}\n{out}\n{err}\n"
                                 f"daemon log:\n{self.log_text()[-3000:]}")
        return json.loads(out) if out.strip() else None

    def log_text(self):
        with open(self.log) as f:
            return f.read()

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout=15):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=timeout)
        rc = self.proc.returncode if self.proc else 0
        self.proc = None
        return rc

    def cleanup(self):
        try:
            self.stop()
        except Exception:
            if self.proc:
                self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


_DEFAULT = object()


class HttpApi:
    """A client of a daemon's HTTP API on 127.0.0.1:port, with its bearer token."""

    def __init__(self, port, token):
        self.port = port
        self.token = token

    def request(self, method, path, body=None, token=_DEFAULT, headers=None):
        """(status, parsed JSON body or None); token=None sends no Authorization; raises on a connection the
        daemon dropped."""
        token = self.token if token is _DEFAULT else token
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
        finally:
            c.close()
        return r.status, json.loads(data) if data else None

    def connect(self, timeout=10):
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def get_line(self, path):
        """A raw authorised GET of `path`, as bytes to send."""
        return (f"GET {path} HTTP/1.1\r\nHost: luaflowd\r\nAuthorization: Bearer {self.token}\r\n\r\n").encode()


def finish(d):
    """Stops a daemon a whole test class shared, removes its directory, and fails if it did not exit cleanly."""
    rc = d.stop()
    log = d.log_text()
    d.cleanup()
    if rc != 0:
        raise AssertionError("luaflowd did not exit cleanly on SIGTERM:\n" + log[-3000:])


class DaemonTest(unittest.TestCase):
    """Gives each test a fresh daemon; subclasses set WORKFLOWS."""
    WORKFLOWS = {}
    CONFIG = None

    def setUp(self):
        self.d = Daemon(self.WORKFLOWS, self.CONFIG)
        self.d.start()

    def tearDown(self):
        rc = self.d.stop()
        self.assertEqual(rc, 0, "luaflowd did not exit cleanly on SIGTERM:\n" + self.d.log_text()[-3000:])
        self.d.cleanup()

    def run_wait(self, workflow, *args, expect_rc=0):
        return self.d.ctl_json("run", workflow, *args, "--wait", expect_rc=expect_rc)


def ms(t):
    """Seconds since the epoch of an RFC 3339 time."""
    from datetime import datetime
    return datetime.fromisoformat(t).timestamp()


# What a test file exits with when tests were skipped and none failed: ctest's SKIP_RETURN_CODE for the
# integration tests (tests/CMakeLists.txt), so that a skip shows as "Skipped", never as "Passed".
SKIPPED = 77


def peers_required():
    """CI (.ci/run exports LUAFLOW_REQUIRE_PEERS=1) has every peer the tests start: sshd, Slurm."""
    return os.environ.get("LUAFLOW_REQUIRE_PEERS", "") not in ("", "0")


def missing_peer(why):
    """A test needs a peer that is not here: a failure in CI, a skip elsewhere."""
    if peers_required():
        raise AssertionError(f"missing peer: {why} (LUAFLOW_REQUIRE_PEERS is set)")
    print(f"skipped: {why}", flush=True)
    raise unittest.SkipTest(why)


def main():
    """unittest.main() for test files that may skip: exit 1 on a failure, SKIPPED when a test was skipped."""
    import sys
    result = unittest.main(exit=False, verbosity=2).result
    if not result.wasSuccessful():
        sys.exit(1)
    sys.exit(SKIPPED if result.skipped else 0)
