#!/usr/bin/env python3
"""http.get throughput (issue goal: >= 50 % of wrk's rate against the same server), next to the physical
limit measured in the same run.

  python3 bench/http_bench.py --build build [--seconds 5] [--actions 50] [--threads 2] [--file-size 128]
                              [--workers 1] [--rounds 3] [--json]

1. nginx on 127.0.0.1 (a free port) serves one small static file with keep-alive; its config, pid,
   logs and temp paths live in a temp dir (nginx -p DIR -c DIR/nginx.conf -g 'daemon off;').
2. wrk -t THREADS -c ACTIONS -d SECONDS against it: the requests/s the machine can do (the limit).
   And BUILD/bench/raw_curl_multi: ACTIONS keep-alive transfers looping on one libcurl multi handle on
   one thread, nothing else: what libcurl itself gives, which http.get cannot pass (it is libcurl).
3. luaflowd in a temp dir runs one execution of a workflow with ACTIONS independent Lua actions; each
   loops `http.get` on the same URL for SECONDS and returns how many 200s it got. Requests/s is their
   sum over the actions' span (first started_at to last finished_at, from the run's report).
2 and 3 alternate for ROUNDS rounds (the machine is shared: load from elsewhere hits both alike), and the
median of the rounds' ratios is the figure.
Both clients keep their connections open (nginx: keepalive_requests high), so the figure is requests,
not TCP handshakes. The CPU seconds luaflowd and nginx used during each phase are printed beside.
Prints PASS/MISS against the goal; always exits 0 (benchmarks measure, they do not assert).
"""
import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import luaflow_bench as lb  # noqa: E402  (the daemon starter and socket client all benchmarks use)

NGINX_CONF = """
worker_processes {workers};
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp_body;
    proxy_temp_path {dir}/tmp_proxy;
    fastcgi_temp_path {dir}/tmp_fastcgi;
    uwsgi_temp_path {dir}/tmp_uwsgi;
    scgi_temp_path {dir}/tmp_scgi;
    keepalive_timeout 60s;
    keepalive_requests 10000000;
    server {{
        listen 127.0.0.1:{port};
        {server}
    }}
}}
"""

WORKFLOW = """
local actions = {}
for i = 1, %d do
  actions["a" .. i] = { timeout = "10m", run = function(ctx)
    local url, stop = ctx.input.url, time.now() + ctx.input.seconds
    local ok, other = 0, 0
    while time.now() < stop do
      local r = http.get(url)
      if r.status == 200 then ok = ok + 1 else other = other + 1 end
    end
    return { ok = ok, other = other }
  end }
end
return workflow { actions = actions }
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    """utime + stime of a process and its waited-for children, in seconds."""
    return sum(lb.proc_cpu(pid))


def nginx_cpu(master):
    """CPU of the nginx master and its workers."""
    total = cpu_seconds(master)
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                if ppid == master:
                    total += cpu_seconds(int(pid))
            except (FileNotFoundError, ProcessLookupError):
                pass
    return total


def start_nginx(root, port, workers, file_size, server=None):
    """nginx serving ROOT/www/hello.txt (file_size bytes), or, with `server`, those directives instead (a
    location answering POSTs, say)."""
    os.chmod(root, 0o755)  # run as root, nginx's workers are `nobody` and must read the file
    os.makedirs(os.path.join(root, "www"))
    with open(os.path.join(root, "www", "hello.txt"), "wb") as f:
        f.write(b"x" * file_size)
    conf = os.path.join(root, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(dir=root, port=port, workers=workers, server=server or f"root {root}/www;"))
    proc = subprocess.Popen(["/usr/sbin/nginx", "-p", root, "-c", conf, "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("nginx did not start: " + open(os.path.join(root, "error.log")).read())
            time.sleep(0.01)


def run_wrk(url, threads, conns, seconds):
    """requests/s, error text, and wrk's own CPU seconds per request."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.check_output(["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", url], text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    rate = float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    return rate, (errors.group(0) if errors else ""), cpu / max(total, 1)


def ts(t):
    return datetime.fromisoformat(t).timestamp()


class Luaflowd(lb.Daemon):
    """One daemon for every round, with the load workflow."""

    def __init__(self, build, actions):
        super().__init__(build, {"load.lua": WORKFLOW % actions}, config="", prefix="luaflow-http-bench-")

    def run(self, url, seconds):
        """requests/s, 200s, other statuses, the span, and luaflowd's CPU seconds."""
        cpu0 = sum(self.cpu_s(children=True))
        report = self.client.call("run", {"workflow": "load", "input": {"url": url, "seconds": seconds}, "wait": True})
        cpu = sum(self.cpu_s(children=True)) - cpu0
        if report["status"] != "succeeded":
            raise RuntimeError("the load workflow failed: " + json.dumps(report)[:2000])
        acts = report["actions"].values()
        ok = sum(a["output"]["ok"] for a in acts)
        other = sum(a["output"]["other"] for a in acts)
        span = max(ts(a["finished_at"]) for a in acts) - min(ts(a["started_at"]) for a in acts)
        return ok / span, ok, other, span, cpu


def main():
    ap = lb.arg_parser(__doc__)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--actions", type=int, default=50, help="Lua actions, and wrk's connections")
    ap.add_argument("--threads", type=int, default=2, help="wrk's threads")
    ap.add_argument("--workers", type=int, default=1, help="nginx worker processes")
    ap.add_argument("--file-size", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    lb.require(args.build, os.path.join("bench", "raw_curl_multi"))
    root = tempfile.mkdtemp(prefix="luaflow-http-bench-nginx-")
    port = free_port()
    nginx = start_nginx(root, port, args.workers, args.file_size)
    url = f"http://127.0.0.1:{port}/hello.txt"
    daemon = Luaflowd(args.build, args.actions)
    ratios, wrk_rates, rates, curl_rates = [], [], [], []
    raw_curl = os.path.join(args.build, "bench", "raw_curl_multi")
    try:
        daemon.start()
        print(f"nginx: 1 static file of {args.file_size} B, {args.workers} worker(s), keep-alive; "
              f"{os.cpu_count()} cores; {args.rounds} rounds of wrk then luaflowd, {args.seconds} s each")
        for i in range(args.rounds):
            n0 = nginx_cpu(nginx.pid)
            wrk_rate, wrk_errors, wrk_cpu = run_wrk(url, args.threads, args.actions, args.seconds)
            n1 = nginx_cpu(nginx.pid)
            curl_rate, curl_cpu = (float(x) for x in subprocess.check_output(
                [raw_curl, url, str(args.actions), str(args.seconds)], text=True).split())
            curl_rates.append(curl_rate)
            rate, ok, other, span, cpu = daemon.run(url, args.seconds)
            n2 = nginx_cpu(nginx.pid)
            ratios.append(rate / wrk_rate)
            wrk_rates.append(wrk_rate)
            rates.append(rate)
            print(f"round {i + 1}: wrk -t{args.threads} -c{args.actions} -d{args.seconds}s {wrk_rate:,.0f} requests/s "
                  f"(wrk CPU {wrk_cpu * 1e6:.1f} us/request; nginx CPU {n1 - n0:.2f} s){' ' + wrk_errors if wrk_errors else ''}")
            print(f"         bare libcurl, {args.actions} transfers on one multi handle: {curl_rate:,.0f} requests/s "
                  f"({curl_cpu:.1f} us CPU/request); {curl_rate / wrk_rate:.0%} of wrk")
            print(f"         luaflowd, {args.actions} Lua actions looping http.get: {rate:,.0f} requests/s "
                  f"({ok:,} x 200, {other} other, over {span:.2f} s; luaflowd CPU {cpu:.2f} s = "
                  f"{cpu / max(ok, 1) * 1e6:.1f} us/request; nginx CPU {n2 - n1:.2f} s); ratio {rate / wrk_rate:.0%}")
    finally:
        daemon.stop()
        nginx.terminate()
        nginx.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)
    ratio = statistics.median(ratios)
    print(f"  goal >= 50% of wrk: median ratio {ratio:.0%} {'PASS' if ratio >= 0.5 else 'MISS'}")
    curl_ratio = statistics.median(r / c for r, c in zip(rates, curl_rates))
    print(f"  of bare libcurl: median ratio {curl_ratio:.0%}; bare libcurl is "
          f"{statistics.median(c / w for c, w in zip(curl_rates, wrk_rates)):.0%} of wrk")
    lb.emit_json(args, "http", {"ratio": ratio, "requests_per_s": statistics.median(rates),
                                "wrk_requests_per_s": statistics.median(wrk_rates), "rounds": args.rounds,
                                "curl_requests_per_s": statistics.median(curl_rates), "curl_ratio": curl_ratio})


if __name__ == "__main__":
    main()
