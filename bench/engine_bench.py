#!/usr/bin/env python3
"""Engine benchmarks (issue 3), each next to the physical limit measured in the same run.

  python3 bench/engine_bench.py --build build

1. Throughput: executions/s of a 3-action Lua workflow submitted over the socket and run to completion
   (median of 3 runs), next to the raw SQLite commit rate and the commits one execution costs.
2. Idle resident memory with 100 and 1000 workflows loaded.
3. Start-up: from exec to the socket answering, with 1000 workflows.
4. Socket answer latency while a Lua action spins in `while true do end`.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time

THREE_ACTIONS = """
return workflow {
  concurrency = 1000,
  actions = {
    fetch  = { run = function(ctx) return { n = ctx.input.n or 1 } end },
    double = { needs = { "fetch" }, run = function(ctx) return { n = ctx.outputs.fetch.n * 2 } end },
    report = { needs = { "double" }, run = function(ctx) ctx.shared.total = ctx.outputs.double.n; return true end },
  },
}
"""

SPIN = """
return workflow { actions = { spin = { timeout = "30s", run = function() while true do end end } } }
"""


class Client:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.buf = b""
        self.next_id = 0

    def send(self, method, params=None):
        self.next_id += 1
        self.s.sendall(json.dumps({"id": self.next_id, "method": method, "params": params or {}}).encode() + b"\n")

    def recv(self):
        while b"\n" not in self.buf:
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise RuntimeError("daemon closed the socket")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def call(self, method, params=None):
        self.send(method, params)
        r = self.recv()
        if "error" in r:
            raise RuntimeError(f"{method}: {r['error']}")
        return r["result"]

    def close(self):
        self.s.close()


class Daemon:
    def __init__(self, build, workflows):
        self.dir = tempfile.mkdtemp(prefix="luaflow-bench-")
        self.wf = os.path.join(self.dir, "workflows")
        os.makedirs(self.wf)
        for name, text in workflows.items():
            with open(os.path.join(self.wf, name), "w") as f:
                f.write(text)
        self.sock = os.path.join(self.dir, "s.sock")
        self.build = build
        self.proc = None

    def start(self):
        t0 = time.monotonic()
        self.proc = subprocess.Popen([os.path.join(self.build, "luaflowd"), "-c", os.path.join(self.dir, "none.lua"),
                                      "-w", self.wf, "-s", os.path.join(self.dir, "state"), "--socket", self.sock],
                                     stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "log"), "w"))
        while True:
            try:
                c = Client(self.sock)
                c.call("status")
                return time.monotonic() - t0, c
            except (FileNotFoundError, ConnectionRefusedError):
                time.sleep(0.0005)

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_idle(c):
    while True:
        s = c.call("stats")
        if s["running"] == 0 and s["queued"] == 0:
            return s
        time.sleep(0.005)


def throughput(build, n):
    d = Daemon(build, {"three.lua": THREE_ACTIONS})
    _, c = d.start()
    # Commits one execution costs when it runs alone.
    before = wait_idle(c)["commits"]
    c.call("run", {"workflow": "three", "wait": True})
    alone = wait_idle(c)["commits"] - before
    rates = []
    for _ in range(3):
        before = c.call("stats")["commits"]
        t0 = time.monotonic()
        # Pipelined submissions; answers read as they come.
        for i in range(n):
            c.send("run", {"workflow": "three", "input": {"n": i}})
        for i in range(n):
            r = c.recv()
            if "error" in r:
                raise RuntimeError(r["error"])
        after = wait_idle(c)
        rates.append(n / (time.monotonic() - t0))
        loaded = (after["commits"] - before) / n
    d.stop()
    return statistics.median(rates), alone, loaded


def idle_rss(build, count):
    wfs = {f"wf{i:04d}.lua": THREE_ACTIONS for i in range(count)}
    d = Daemon(build, wfs)
    startup, c = d.start()
    time.sleep(0.5)
    rss = d.rss_kib()
    d.stop()
    return rss, startup


def spin_latency(build):
    d = Daemon(build, {"spin.lua": SPIN})
    _, c = d.start()
    c.call("run", {"workflow": "spin"})
    time.sleep(0.2)
    lat = []
    for _ in range(300):
        t0 = time.perf_counter()
        c.call("status")
        lat.append((time.perf_counter() - t0) * 1000)
    idle = []
    d.stop()
    d2 = Daemon(build, {})
    _, c2 = d2.start()
    for _ in range(300):
        t0 = time.perf_counter()
        c2.call("status")
        idle.append((time.perf_counter() - t0) * 1000)
    d2.stop()
    lat.sort()
    idle.sort()
    return lat[len(lat) // 2], lat[int(len(lat) * 0.99)], lat[-1], idle[len(idle) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("-n", type=int, default=20000)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    raw = float(subprocess.check_output([os.path.join(args.build, "bench", "raw_sqlite_commit"), tmp, "20000"]))
    shutil.rmtree(tmp)
    rate, alone, loaded = throughput(args.build, args.n)
    bar = 0.3 * raw / alone
    print(f"raw SQLite commits/s (WAL, synchronous=NORMAL, 1 row each): {raw:,.0f}")
    print(f"commits per execution: {alone} when alone, {loaded:.3f} under load (one commit per loop turn)")
    print(f"3-action Lua workflow over the socket: {rate:,.0f} executions/s (median of 3 x {args.n})")
    print(f"  goal >= 3000/s and >= 30% of raw/commits-per-execution = {bar:,.0f}/s: ratio {rate / (raw / alone):.0%}")
    for count in (100, 1000):
        rss, startup = idle_rss(args.build, count)
        print(f"idle RSS with {count} workflows: {rss / 1024:.1f} MiB; start to socket answering: {startup * 1000:.0f} ms")
    p50, p99, worst, idle = spin_latency(args.build)
    print(f"status round trip while Lua spins: p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {worst:.2f} ms "
          f"(idle daemon p50 {idle:.2f} ms)")


if __name__ == "__main__":
    main()
