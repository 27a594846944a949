#!/usr/bin/env python3
"""Retention benchmark (issue 19): a store of N synthetic executions (10 workflows, most finished 40 days
ago) pruned at start with retention = { days = 30, keep_per_workflow = 100 }.

  python3 bench/retention_bench.py --build build [-n 100000] [--json]

Prints how long the pass took, the socket's `status` round trip meanwhile (p50, p99, max; the goal: within
10 ms) next to the same round trip on the idle daemon afterwards, and the database file before and after.
"""
import os
import shutil
import sqlite3
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import luaflow_bench as lb  # noqa: E402

DAY_MS = 86_400_000
WF = "return workflow { actions = { a = { run = function() return 1 end } } }"


def fill(state, n):
    db = sqlite3.connect(os.path.join(state, "luaflow.db"))
    db.execute("INSERT INTO definitions(digest, workflow, file, source, created_at) VALUES ('d', 'w0', 'w0.lua', "
               "?, 0)", (WF,))
    old = int(time.time() * 1000) - 40 * DAY_MS
    db.executemany("INSERT INTO executions(id, seq, workflow, definition, status, trigger, input, shared, "
                   "created_at, started_at, finished_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                   ((f"e{s:07d}", s, f"w{s % 10}", "d", "succeeded", "{}", "{}", "{}", 0, 0, old)
                    for s in range(1, n + 1)))
    db.executemany("INSERT INTO logs(execution_id, action, attempt, time, stream, line) VALUES (?,?,?,?,?,?)",
                   ((f"e{s:07d}", "a", 1, 0, "stdout", "x" * 200) for s in range(1, n + 1)))
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def rtt(c):
    t0 = time.monotonic()
    c.call("status")
    return (time.monotonic() - t0) * 1000


def main():
    ap = lb.arg_parser(__doc__)
    ap.add_argument("-n", type=int, default=100_000)
    args = ap.parse_args()
    lb.require(args.build)
    d = lb.Daemon(args.build, {f"w{k}.lua": WF for k in range(10)}, "")
    d.start()
    d.stop(remove=False)
    state = os.path.join(d.dir, "state")
    fill(state, args.n)
    before = os.path.getsize(os.path.join(state, "luaflow.db"))
    with open(d.config, "w") as f:
        f.write("retention = { days = 30, keep_per_workflow = 100 }\n")
    try:
        t0 = time.monotonic()
        d.start()
        during = []
        while "retention: pruned" not in d.log_text():
            during.append(rtt(d.client))
            time.sleep(0.001)
        took = time.monotonic() - t0
        # Then the freed pages go back to the file system, a chunk per turn (and not while a checkpoint
        # is out): the socket is measured through that too, until the file has kept its size for 1 s.
        size, steady_since, deadline = None, time.monotonic(), time.monotonic() + 60
        while time.monotonic() - steady_since < 1.0 and time.monotonic() < deadline:
            t1 = time.monotonic()
            now_size = d.client.call("status")["database_bytes"]
            during.append((time.monotonic() - t1) * 1000)
            if now_size != size:
                size, steady_since = now_size, time.monotonic()
            time.sleep(0.001)
        gave_back = steady_since - t0 - took
        idle = [rtt(d.client) for _ in range(200)]
    finally:
        d.stop(remove=False)
    after = os.path.getsize(os.path.join(state, "luaflow.db"))
    shutil.rmtree(d.dir, ignore_errors=True)
    during.sort()
    p50, p99, worst = statistics.median(during), during[int(len(during) * 0.99)], during[-1]
    print(f"pruned {args.n - 1000} of {args.n} executions in {took:.2f} s (from start)")
    print(f"status round trip meanwhile: p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {worst:.2f} ms "
          f"({len(during)} calls; goal: within 10 ms); idle afterwards p50 {statistics.median(idle):.3f} ms")
    print(f"database file: {before / 1e6:.1f} MB before, {after / 1e6:.1f} MB after (given back within "
          f"{gave_back:.1f} s of the pass's end)")
    lb.emit_json(args, "retention", {"n": args.n, "seconds": took, "p50_ms": p50, "p99_ms": p99, "max_ms": worst,
                                     "idle_p50_ms": statistics.median(idle), "bytes_before": before,
                                     "bytes_after": after})


if __name__ == "__main__":
    main()
