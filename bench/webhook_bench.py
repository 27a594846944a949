#!/usr/bin/env python3
"""Webhook throughput (issue 17): POST /hooks/three?wait=10s running a 3-action Lua workflow to its end
(every execution committed to the store before the 200 with its report), with h2load --h1 at 1 and 16
connections, next to nginx serving a small static file to the same h2load in the same run.

  python3 bench/webhook_bench.py --build build [-n 20000] [--json]

Latencies (p50, p99) come from h2load's --log-file, one line per request. Goal: >= 5000/s at 1 connection,
>= 12000/s at 16 (for scale, the issue quotes n8n at 19/s and 28/s, Node-RED at 2700/s and 6100/s keeping
nothing). Needs h2load (Debian's nghttp2-client) and nginx.
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import luaflow_bench as lb  # noqa: E402
from http_bench import free_port, start_nginx  # noqa: E402

THREE = """
return workflow {
  concurrency = 1000,
  triggers = { webhook = {} },
  actions = {
    fetch  = { run = function(ctx) return { n = ctx.input.n or 1 } end },
    double = { needs = { "fetch" }, run = function(ctx) return { n = ctx.outputs.fetch.n * 2 } end },
    report = { needs = { "double" }, run = function(ctx) ctx.shared.total = ctx.outputs.double.n; return true end },
  },
}
"""


def h2load(url, n, conns, body=None, logdir=None):
    """(requests/s, p50 ms, p99 ms, failed) of n requests over `conns` HTTP/1.1 keep-alive connections."""
    log = os.path.join(logdir, f"h2load-{conns}.log")
    argv = ["h2load", "--h1", "-n", str(n), "-c", str(conns), "-m", "1", "--log-file", log]
    if body is not None:
        data = os.path.join(logdir, "body.json")
        with open(data, "w") as f:
            f.write(body)
        argv += ["-d", data, "-H", "Content-Type: application/json"]
    out = subprocess.run(argv + [url], capture_output=True, text=True, timeout=600).stdout
    rate = failed = None
    for line in out.splitlines():
        if line.startswith("finished in"):
            rate = float(line.split(",")[1].split()[0])
        if line.startswith("requests:"):
            parts = line.replace(",", "").split()
            failed = int(parts[parts.index("failed") - 1]) + int(parts[parts.index("errored") - 1])
    lat = []
    with open(log) as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 3 and fields[1] in ("200", "202"):
                lat.append(int(fields[2]) / 1000)
    lat.sort()
    if rate is None or not lat:
        raise RuntimeError("h2load gave no figures:\n" + out)
    return rate, lat[len(lat) // 2], lat[int(len(lat) * 0.99)], failed


def main():
    ap = lb.arg_parser(__doc__)
    ap.add_argument("-n", type=int, default=20000)
    args = ap.parse_args()
    lb.require(args.build, "luaflow-http.so")
    for tool in ("h2load", "/usr/sbin/nginx"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found: apt-get install nghttp2-client nginx-light")
    tmp = tempfile.mkdtemp(prefix="luaflow-webhook-bench-")
    token = os.path.join(tmp, "token")
    with open(token, "w") as f:
        f.write("bench-token\n")
    port = free_port()
    d = lb.Daemon(args.build, {"three.lua": THREE},
                  config=f'shutdown_grace = "1s"\nhttp = {{ listen = "127.0.0.1:{port}", token_file = "{token}" }}\n')
    nginx_root = tempfile.mkdtemp(prefix="luaflow-webhook-bench-nginx-")
    nginx_port = free_port()
    nginx = start_nginx(nginx_root, nginx_port, 1, 100)
    figures = {"n": args.n}
    try:
        d.start()
        hook = f"http://127.0.0.1:{port}/hooks/three?wait=10s"
        static = f"http://127.0.0.1:{nginx_port}/hello.txt"
        h2load(hook, 500, 1, '{"n": 3}', tmp)  # warm-up
        for conns in (1, 16):
            n = args.n if conns == 1 else args.n * 2
            rate, p50, p99, failed = h2load(hook, n, conns, '{"n": 3}', tmp)
            nrate, np50, np99, _ = h2load(static, n, conns, None, tmp)
            executions = d.client.call("stats")
            print(f"webhook ?wait= (3-action Lua workflow, committed), {conns} connection(s): {rate:,.0f}/s, "
                  f"p50 {p50:.3f} ms, p99 {p99:.3f} ms, {failed} failed; nginx static file: {nrate:,.0f}/s, "
                  f"p50 {np50:.3f} ms, p99 {np99:.3f} ms: ratio {rate / nrate:.0%}", flush=True)
            figures[f"c{conns}"] = {"rate": rate, "p50_ms": p50, "p99_ms": p99, "failed": failed,
                                    "nginx_rate": nrate, "nginx_p50_ms": np50, "nginx_p99_ms": np99}
        figures["commits"] = executions["commits"]
    finally:
        d.stop()
        nginx.terminate()
        nginx.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(nginx_root, ignore_errors=True)
    lb.emit_json(args, "webhook", figures)


if __name__ == "__main__":
    main()
