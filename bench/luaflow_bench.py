"""What the benchmarks share: a luaflowd in a temp dir, its socket client, /proc readings, --build, --json.

  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
  import luaflow_bench as lb

  ap = lb.arg_parser(__doc__)          # --build (the build dir, as today) and --json
  args = ap.parse_args()
  d = lb.Daemon(args.build, {"hello.lua": TEXT}, config='shutdown_grace = "1s"\\n')
  startup_s = d.start()                # exec to the first `status` answer; d.client is connected
  d.client.call("run", {"workflow": "hello", "wait": True})
  d.rss_kib(); d.cpu_s()
  d.stop()                             # SIGTERM (SIGKILL after 60 s), then the temp dir is removed
  lb.emit_json(args, "hello", {"figure": 1.0})   # with --json: one last line of JSON on stdout
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RUNNING = []  # started daemons not stopped yet: stop_all() ends them whatever happened


class Client:
    """JSON lines over the daemon's Unix socket: send() requests (pipelined if wanted), recv() the answers."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.s.connect(path)
        except OSError:
            self.s.close()
            raise
        self.buf = b""
        self.next_id = 0

    def send(self, method, params=None):
        self.next_id += 1
        self.s.sendall(json.dumps({"id": self.next_id, "method": method, "params": params or {}}).encode() + b"\n")

    def recv(self):
        return json.loads(self.recv_line())

    def recv_line(self):
        """The next answer line, undecoded (also kept as last_line)."""
        # Chunks are joined once and only each new one is searched: a megabytes-long answer (an inspect
        # of 10 000 actions) would otherwise cost the client time quadratic in its length.
        if b"\n" not in self.buf:
            chunks = [self.buf]
            while True:
                chunk = self.s.recv(1 << 20)
                if not chunk:
                    raise RuntimeError("daemon closed the socket")
                chunks.append(chunk)
                if b"\n" in chunk:
                    break
            self.buf = b"".join(chunks)
        self.last_line, self.buf = self.buf.split(b"\n", 1)
        return self.last_line

    def call(self, method, params=None):
        self.send(method, params)
        r = self.recv()
        if "error" in r:
            raise RuntimeError(f"{method}: {r['error']}")
        return r["result"]

    def results(self, n):
        """The next n answers' results (of requests already sent); raises on an error answer."""
        out = []
        for _ in range(n):
            r = self.recv()
            if "error" in r:
                raise RuntimeError(r["error"])
            out.append(r["result"])
        return out

    def status_ms(self, calls):
        """ms per `status` round trip, `calls` of them one after the other."""
        lat = []
        for _ in range(calls):
            t0 = time.perf_counter()
            self.call("status")
            lat.append((time.perf_counter() - t0) * 1000)
        return lat

    def wait_idle(self, poll=0.005):
        """Polls `stats` until nothing runs or waits in a queue; returns that last `stats`."""
        while True:
            s = self.call("stats")
            if s["running"] == 0 and s["queued"] == 0:
                return s
            time.sleep(poll)

    def close(self):
        self.s.close()


def result_of(answer):
    """An answer's result; raises on an error answer."""
    if "error" in answer:
        raise RuntimeError(answer["error"])
    return answer["result"]


def proc_status(pid, *keys):
    """Fields of /proc/PID/status in KiB (VmRSS, VmHWM, RssAnon, ...), as a dict."""
    vals = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in keys:
                vals[k] = int(v.split()[0])
    return vals


def proc_cpu(pid):
    """(user + system s of the process, user + system s of its reaped children), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # After the ")": utime, stime, cutime, cstime are fields 11..14 (0-based).
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


class Daemon:
    """One luaflowd in a fresh temp dir (state, socket, log): `workflows` is a dict of file name to text,
    written to DIR/workflows, or the path of a workflows directory to share; `config` the text of its
    config file (None: no file, the defaults)."""

    def __init__(self, build, workflows=None, config=None, prefix="luaflow-bench-", root=None):
        self.build = build
        self.dir = tempfile.mkdtemp(prefix=prefix, dir=root)
        if isinstance(workflows, str):
            self.wf = workflows
        else:
            self.wf = os.path.join(self.dir, "workflows")
            os.makedirs(self.wf)
            for name, text in (workflows or {}).items():
                with open(os.path.join(self.wf, name), "w") as f:
                    f.write(text)
        self.config = os.path.join(self.dir, "luaflowd.lua")
        if config is not None:
            with open(self.config, "w") as f:
                f.write(config)
        self.sock = os.path.join(self.dir, "s.sock")
        self.log = os.path.join(self.dir, "log")
        self.proc = None
        self.client = None

    def start(self, timeout=120, wrapper=()):
        """Starts luaflowd and connects self.client; returns the s from exec to the first `status` answer."""
        t0 = time.monotonic()
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen([*wrapper, os.path.join(self.build, "luaflowd"), "-c", self.config,
                                          "-w", self.wf, "-s", os.path.join(self.dir, "state"),
                                          "--socket", self.sock],
                                         stdout=subprocess.DEVNULL, stderr=log)
        RUNNING.append(self)
        while True:
            try:
                c = Client(self.sock)
                c.call("status")
                self.client = c
                return time.monotonic() - t0
            except (FileNotFoundError, ConnectionRefusedError):
                if self.proc.poll() is not None:
                    raise RuntimeError(f"luaflowd exited with {self.proc.returncode}:\n"
                                       f"{self.log_text()[-3000:]}") from None
                if time.monotonic() - t0 > timeout:
                    raise RuntimeError(f"luaflowd did not answer within {timeout} s:\n"
                                       f"{self.log_text()[-3000:]}") from None
                time.sleep(0.0005)

    def log_text(self):
        with open(self.log) as f:
            return f.read()

    def mem_kib(self, *keys):
        """/proc/PID/status fields in KiB, default (VmRSS, VmHWM)."""
        keys = keys or ("VmRSS", "VmHWM")
        vals = proc_status(self.proc.pid, *keys)
        return tuple(vals[k] for k in keys)

    def rss_kib(self):
        return self.mem_kib("VmRSS")[0]

    def cpu_s(self, children=False):
        """The daemon's user + system s; with children=True (own, its reaped children's)."""
        own, kids = proc_cpu(self.proc.pid)
        return (own, kids) if children else own

    def stop(self, remove=True):
        """SIGTERM and wait (SIGKILL after 60 s); then, unless remove=False, delete the temp dir."""
        if self.client:
            self.client.close()
            self.client = None
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self in RUNNING:
            RUNNING.remove(self)
        if remove:
            self.remove()

    def remove(self, background=False):
        if not background:
            shutil.rmtree(self.dir, ignore_errors=True)
            return
        # Thousands of scratch directories (one per action) take a minute to delete on a busy ext4: left
        # to a detached `rm` once the report is out.
        subprocess.Popen(["nice", "rm", "-rf", self.dir], start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_all():
    for d in list(RUNNING):
        d.stop()


def default_build():
    """./build if it holds luaflowd, else the build/ next to bench/."""
    if os.access(os.path.join("build", "luaflowd"), os.X_OK):
        return "build"
    return os.path.join(os.path.dirname(HERE), "build")


def arg_parser(doc):
    """An ArgumentParser with --build (the build dir) and --json (a last line of JSON figures for bench/run)."""
    ap = argparse.ArgumentParser(description=doc.strip().split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=default_build(), help="the build directory (default: ./build, else the "
                                                             "repository's build/)")
    ap.add_argument("--json", action="store_true", help="end with one line of JSON: the figures, for bench/run")
    return ap


def require(build, *programs):
    """Exits with a message unless every BUILD/program is there."""
    for exe in ("luaflowd", *programs):
        if not os.access(os.path.join(build, exe), os.X_OK):
            sys.exit(f"{os.path.join(build, exe)} not found: nice cmake --build {build} -j1")


def emit_json(args, bench, figures):
    """With --json, the figures as the last line of stdout: {"bench": NAME, "figures": {...}}."""
    if getattr(args, "json", False):
        print(json.dumps({"bench": bench, "figures": figures}), flush=True)
