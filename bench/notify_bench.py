#!/usr/bin/env python3
"""Notification benchmarks (issue 18), each next to its limit measured in the same run.

  python3 bench/notify_bench.py --build build [-n 5000] [--json]

1. Delivery: notifications delivered per second to a local receiver (nginx answering 200 to a POST on
   127.0.0.1): N executions of a one-action Lua workflow whose `success` rule names a json webhook,
   pipelined over the socket, timed from the first submission to the last row `sent` in the store. The
   limit: wrk POSTing the same body to the same nginx on as many connections as the daemon keeps in
   flight per notifier (4), loopback HTTP and nothing else.
2. A dead receiver must not slow the engine: executions/s of the same workflow, pipelined (median of 3 x
   N), when its rule names a webhook that accepts connections and never answers (a listener that never
   accepts: every attempt waits out its 30 s), next to the same with the receiver answering (nginx), and
   to the workflow with no rule at all (what writing a notification row per execution costs).
"""
import json
import os
import re
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import luaflow_bench as lb  # noqa: E402
from http_bench import free_port, start_nginx  # noqa: E402

ONE = """
return workflow {
  concurrency = 1000,
  %s
  actions = { a = { run = function(ctx) return { n = ctx.input.n } end } },
}
"""


def wrk_post(url, conns, seconds, body):
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    script.write(f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n'
                 'wrk.headers["Content-Type"] = "application/json"\n')
    script.close()
    out = subprocess.check_output(["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "-s", script.name, url], text=True)
    os.unlink(script.name)
    return float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))


def config(url):
    return f'notifiers = {{ hook = {{ webhook = {{ url = "{url}", format = "json" }} }} }}\n'


def pipelined(d, n):
    c = d.client
    t0 = time.monotonic()
    for i in range(n):
        c.send("run", {"workflow": "one", "input": {"n": i}})
    c.results(n)
    c.wait_idle()
    return n / (time.monotonic() - t0), t0


def delivery(build, url, n):
    d = lb.Daemon(build, {"one.lua": ONE % 'notify = { success = { "hook" } },'}, config(url))
    try:
        d.start()
        _, t0 = pipelined(d, n)
        db = sqlite3.connect(f"file:{os.path.join(d.dir, 'state', 'luaflow.db')}?mode=ro", uri=True)
        while db.execute("SELECT count(*) FROM notifications WHERE status = 'sent'").fetchone()[0] < n:
            time.sleep(0.005)
        rate = n / (time.monotonic() - t0)
        db.close()
    finally:
        d.stop()
    return rate


def engine_rate(build, rule, url, n):
    d = lb.Daemon(build, {"one.lua": ONE % rule}, config(url))
    try:
        d.start()
        return statistics.median(pipelined(d, n)[0] for _ in range(3))
    finally:
        d.stop()


def main():
    ap = lb.arg_parser(__doc__)
    ap.add_argument("-n", type=int, default=5000)
    args = ap.parse_args()
    lb.require(args.build)
    root = tempfile.mkdtemp(prefix="luaflow-notify-bench-nginx-")
    port = free_port()
    nginx = start_nginx(root, port, 1, 0, server='location / { return 200 "ok"; }')
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead.listen(4096)  # never accepts: a connection completes, and nothing ever answers
    dead_url = f"http://127.0.0.1:{dead.getsockname()[1]}/hook"
    try:
        url = f"http://127.0.0.1:{port}/hook"
        body = json.dumps({"event": "success", "workflow": "one", "text": "one succeeded" * 20})
        limit = wrk_post(url, 4, 3, body)
        rate = delivery(args.build, url, args.n)
        print(f"loopback HTTP POSTs to nginx, 4 connections (wrk): {limit:,.0f}/s")
        print(f"notifications delivered to nginx: {rate:,.0f}/s ({args.n} executions, each notifying once), "
              f"ratio {rate / limit:.0%}")
        rule = 'notify = { success = { "hook" } },'
        alone = engine_rate(args.build, "", dead_url, args.n)
        with_dead = engine_rate(args.build, rule, dead_url, args.n)
        with_live = engine_rate(args.build, rule, url, args.n)
        print(f"executions/s with a receiver that never answers: {with_dead:,.0f}; with one that answers: "
              f"{with_live:,.0f} (ratio {with_dead / with_live:.0%}); with no rule: {alone:,.0f} "
              f"(ratio {with_dead / alone:.0%})")
    finally:
        nginx.terminate()
        nginx.wait()
        dead.close()
    lb.emit_json(args, "notify", {"post_limit_per_s": limit, "delivered_per_s": rate, "n": args.n,
                                  "executions_per_s_no_rule": alone, "executions_per_s_dead_receiver": with_dead,
                                  "executions_per_s_live_receiver": with_live})


if __name__ == "__main__":
    main()
