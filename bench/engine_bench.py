#!/usr/bin/env python3
"""Engine benchmarks (issue 3), each next to the physical limit measured in the same run.

  python3 bench/engine_bench.py --build build [-n 20000] [--json]

1. Throughput: executions/s of a 3-action Lua workflow submitted over the socket and run to completion
   (median of 3 runs), next to its limit: the same rows written through the daemon's own store functions
   and schema with as many executions per commit as the daemon made under load, and nothing else
   (BUILD/bench/raw_store_rows). The raw SQLite commit rate is printed too: it was the limit while an
   execution cost several commits; under load the daemon commits once per loop turn, for many.
   The same with durability = "power" (synchronous=FULL), one run, printed beside.
   The same one at a time: `run` with `wait` on one connection, each answered (the report) before
   the next is sent: executions/s and the round trip's p50/p99, next to its limit: a bare `status`
   round trip plus the execution's rows alone in a commit of their own (raw_store_rows ... 1).
2. Idle resident memory with 100 and 1000 workflows loaded.
3. Start-up: from exec to the socket answering, with 1000 workflows.
4. Socket answer latency while a Lua action spins in `while true do end`.
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import luaflow_bench as lb  # noqa: E402  (the daemon starter and socket client all benchmarks use)

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


def throughput(build, n, config=None, rounds=3):
    d = lb.Daemon(build, {"three.lua": THREE_ACTIONS}, config)
    try:
        d.start()
        c = d.client
        # Commits one execution costs when it runs alone.
        before = c.wait_idle()["commits"]
        c.call("run", {"workflow": "three", "wait": True})
        alone = c.wait_idle()["commits"] - before
        rates = []
        for _ in range(rounds):
            before = c.call("stats")["commits"]
            t0 = time.monotonic()
            # Pipelined submissions; answers read as they come.
            for i in range(n):
                c.send("run", {"workflow": "three", "input": {"n": i}})
            c.results(n)
            after = c.wait_idle()
            rates.append(n / (time.monotonic() - t0))
            loaded = (after["commits"] - before) / n
    finally:
        d.stop()
    return statistics.median(rates), alone, loaded


def one_at_a_time(build, n):
    """run --wait, one after another on one connection: (executions/s, p50 ms, p99 ms, status p50 ms)."""
    d = lb.Daemon(build, {"three.lua": THREE_ACTIONS})
    try:
        d.start()
        c = d.client
        for i in range(200):  # warm-up
            c.call("run", {"workflow": "three", "input": {"n": i}, "wait": True})
        lat = []
        t0 = time.monotonic()
        for i in range(n):
            t = time.perf_counter()
            c.call("run", {"workflow": "three", "input": {"n": i}, "wait": True})
            lat.append((time.perf_counter() - t) * 1000)
        total = time.monotonic() - t0
        bare = sorted(c.status_ms(1000))
    finally:
        d.stop()
    lat.sort()
    return n / total, lat[len(lat) // 2], lat[int(len(lat) * 0.99)], bare[len(bare) // 2]


def idle_rss(build, count):
    wfs = {f"wf{i:04d}.lua": THREE_ACTIONS for i in range(count)}
    d = lb.Daemon(build, wfs)
    try:
        startup = d.start()
        time.sleep(0.5)
        rss = d.rss_kib()
    finally:
        d.stop()
    return rss, startup


def spin_latency(build):
    d = lb.Daemon(build, {"spin.lua": SPIN})
    try:
        d.start()
        d.client.call("run", {"workflow": "spin"})
        time.sleep(0.2)
        lat = sorted(d.client.status_ms(300))
    finally:
        d.stop()
    d2 = lb.Daemon(build, {})
    try:
        d2.start()
        idle = sorted(d2.client.status_ms(300))
    finally:
        d2.stop()
    return lat[len(lat) // 2], lat[int(len(lat) * 0.99)], lat[-1], idle[len(idle) // 2]


def main():
    ap = lb.arg_parser(__doc__)
    ap.add_argument("-n", type=int, default=20000)
    args = ap.parse_args()
    lb.require(args.build, os.path.join("bench", "raw_sqlite_commit"))
    lb.require(args.build, os.path.join("bench", "raw_store_rows"))
    tmp = tempfile.mkdtemp()
    raw = float(subprocess.check_output([os.path.join(args.build, "bench", "raw_sqlite_commit"), tmp, "20000"]))
    shutil.rmtree(tmp)
    rate, alone, loaded = throughput(args.build, args.n)
    per_commit = max(1, round(1 / loaded)) if loaded > 0 else 1
    tmp = tempfile.mkdtemp()
    store_rate = float(subprocess.check_output([os.path.join(args.build, "bench", "raw_store_rows"), tmp,
                                                str(args.n), str(per_commit)]))
    shutil.rmtree(tmp)
    print(f"raw SQLite commits/s (WAL, synchronous=NORMAL, 1 row each): {raw:,.0f}")
    print(f"commits per execution: {alone} when alone, {loaded:.3f} under load (one commit per loop turn)")
    print(f"the store's rows of one execution alone, {per_commit} executions per commit (raw_store_rows): "
          f"{store_rate:,.0f} executions/s")
    print(f"3-action Lua workflow over the socket: {rate:,.0f} executions/s (median of 3 x {args.n})")
    print(f"  goal >= 3000/s and >= 30% of the store's rows alone = {0.3 * store_rate:,.0f}/s: "
          f"ratio {rate / store_rate:.0%}")
    figures = {"raw_commits_per_s": raw, "commits_alone": alone, "commits_loaded": loaded, "n": args.n,
               "executions_per_s": rate, "limit_executions_per_s": store_rate, "store_per_commit": per_commit}
    power, _, power_loaded = throughput(args.build, args.n, 'durability = "power"\n', rounds=1)
    print(f"the same with durability = \"power\" (synchronous=FULL, a WAL sync per commit): {power:,.0f} "
          f"executions/s, {power_loaded:.3f} commits per execution (crash: {rate:,.0f}/s)")
    figures.update(power_executions_per_s=power, power_commits_loaded=power_loaded)
    seq_rate, seq_p50, seq_p99, bare_p50 = one_at_a_time(args.build, max(1000, args.n // 5))
    # Its limit: a bare round trip on the socket plus the execution's rows alone, committed by themselves.
    tmp = tempfile.mkdtemp()
    store_alone = float(subprocess.check_output([os.path.join(args.build, "bench", "raw_store_rows"), tmp,
                                                 str(max(1000, args.n // 5)), "1"]))
    shutil.rmtree(tmp)
    seq_limit_ms = bare_p50 + 1000 / store_alone
    print(f"the same one at a time (run with wait, one connection): {seq_rate:,.0f} executions/s, "
          f"round trip p50 {seq_p50:.3f} ms, p99 {seq_p99:.3f} ms (goal >= 5000/s, p50 <= 0.2 ms)")
    print(f"  its limit: a bare status round trip (p50 {bare_p50:.3f} ms) plus the execution's rows alone in a "
          f"commit of their own ({store_alone:,.0f}/s, {1000 / store_alone:.3f} ms) = {seq_limit_ms:.3f} ms, "
          f"{1000 / seq_limit_ms:,.0f}/s: ratio {seq_rate * seq_limit_ms / 1000:.0%}")
    figures.update(seq_executions_per_s=seq_rate, seq_p50_ms=seq_p50, seq_p99_ms=seq_p99, seq_bare_p50_ms=bare_p50,
                   seq_store_alone_per_s=store_alone, seq_limit_ms=seq_limit_ms)
    for count in (100, 1000):
        rss, startup = idle_rss(args.build, count)
        print(f"idle RSS with {count} workflows: {rss / 1024:.1f} MiB; start to socket answering: {startup * 1000:.0f} ms")
        figures[f"idle_rss_mib_{count}"] = rss / 1024
        figures[f"startup_ms_{count}"] = startup * 1000
    p50, p99, worst, idle = spin_latency(args.build)
    print(f"status round trip while Lua spins: p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {worst:.2f} ms "
          f"(idle daemon p50 {idle:.2f} ms)")
    figures.update(spin_p50_ms=p50, spin_p99_ms=p99, spin_max_ms=worst, idle_p50_ms=idle)
    lb.emit_json(args, "engine", figures)


if __name__ == "__main__":
    main()
