#!/usr/bin/env python3
"""Many sleeping Lua actions (issue goal: 10 000 Lua actions sleeping at once: <= 100 MiB peak RSS of
luaflowd, and `luaflowctl status` answering in < 10 ms meanwhile), each figure next to the physical
limit measured in the same run.

  python3 bench/sleep_bench.py --build build [-n 10000] [--layout one|split|execs|both|all]
                               [--sizes 1000,5000] [--sleep S] [--calls 50] [--rtts 200] [--queue-limit Q] [--json]

Layouts (`both`, the default, is one and split; `all` adds execs):
  one    one workflow with N independent actions, one execution: N actions of one execution asleep.
  split  one workflow with 100 independent actions and `concurrency = N/100`, N/100 executions.
  execs  one workflow with one action and `concurrency = N`, N executions.
Every action is one shared `run` function that sleeps until `ctx.input.wake_at`, so all N wake in the
same millisecond and the wake-up measures the finishing path at full load. The config sets no queue
limit (queues are unlimited unless configured; Executor::take_slot counts Lua actions too). Actions
have `timeout = "1h"` (the default 60 s Lua timeout would not matter, but keeps the test honest).

For each layout and size, on one daemon in a temp dir (luaflowd -c CONFIG -w WORKFLOWS -s STATE --socket):
1. Idle, the workflow loaded (the physical baseline): VmRSS/VmHWM, the daemon's CPU share over the
   sampling window, `luaflowctl --json status` (the real CLI process: wall time and its own CPU), the
   raw socket round trip (luaflow_bench's Client). Floors measured in the same run: `luaflowctl
   --version` (the CLI's start-up, no socket) and /bin/true (any process).
2. The run(s) submitted over the socket. Nothing heavy is asked while they sleep (an `inspect` of a
   10 000-action execution is megabytes of JSON, the benchmark's own memory): the start is over when
   the daemon's CPU has been quiet for 0.3 s; `status` is asked every 10 ms meanwhile (its worst round
   trip is the longest loop turn). Each action returns when it started and woke (`time.now()`) and the
   Lua heap it saw before sleeping (`collectgarbage("count")`); read after the run, they prove that all
   N slept through the sampling window.
3. While all N sleep: the same figures as 1.
4. Wake-up: how early/late the sleeps ended against wake_at, first wake to the execution(s) finished
   (`finished_at`, ms), the daemon's CPU, the worst `status` round trip, the peak RSS (VmHWM) of the run.
   Then one `inspect` of the finished run(s): its time and RSS cost.
The slope per sleeping action is (RSS asleep - RSS idle) / N; with --sizes it is also fitted across
sizes. Prints PASS/MISS against the goals; always exits 0 (benchmarks measure, they do not assert).
"""
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import luaflow_bench as lb  # noqa: E402  (the daemon starter and socket client all benchmarks use)

GOAL_RSS_MIB = 100
GOAL_STATUS_MS = 10
SPLIT = 100  # actions per execution in the `split` layout

# One function shared by all actions (a literal per action would add N function prototypes to the
# definition, which is the loader's cost, not a sleeper's).
SLEEPERS = """
local function sleeper(ctx)
  local started = time.now()
  local kib = collectgarbage("count")
  sleep(math.max(0, ctx.input.wake_at - time.now()))
  return {{ started = started, woke = time.now(), kib = kib }}
end
local actions = {{}}
for i = 1, {n} do actions[string.format("s%05d", i)] = {{ run = sleeper, timeout = "1h" }} end
return workflow {{ concurrency = {concurrency}, actions = actions }}
"""

CONFIG = 'shutdown_grace = "1s"\n'

# Asks `status` over the socket argv[1] until its stdin closes, then prints the longest round trip (ms).
STATUS_ASKER = """
import os, select, sys, time
sys.path.insert(0, %r)
import luaflow_bench as lb
c = lb.Client(sys.argv[1])
c.call("status")
print("asking", flush=True)
worst = 0.0
while not select.select([sys.stdin], [], [], 0)[0]:
    t = time.perf_counter()
    c.call("status")
    worst = max(worst, (time.perf_counter() - t) * 1000)
print(worst)
""" % os.path.dirname(os.path.abspath(__file__))


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def spawn_ms(argv, calls):
    """Running argv to completion, per call: (wall ms, the child's own CPU ms, user + system)."""
    wall, cpu = [], []
    for _ in range(calls):
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, _, ru = os.wait4(p.pid, 0)
        p.returncode = 0  # reaped here; keeps Popen from waiting again
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((ru.ru_utime + ru.ru_stime) * 1000)
    return wall, cpu


def ctl_status_ms(d, calls):
    """`luaflowctl --json status` against d, per call: (wall ms, its own CPU ms)."""
    return spawn_ms([os.path.join(d.build, "luaflowctl"), "--socket", d.sock, "--json", "status"], calls)


def sample(d, c, calls, rtts):
    """RSS, CPU share, luaflowctl status and socket round trips over one window."""
    cpu0, w0 = d.cpu_s(), time.monotonic()
    ctl, ctl_cpu = ctl_status_ms(d, calls)
    sock = c.status_ms(rtts)
    # A quiet stretch too, so that the CPU share is not only the answering.
    time.sleep(0.5)
    cpu = (d.cpu_s() - cpu0) / (time.monotonic() - w0)
    rss, hwm = d.mem_kib()
    return {"rss": rss, "hwm": hwm, "cpu": cpu, "ctl": ctl, "ctl_cpu": ctl_cpu, "sock": sock}


def action_docs(c, ids):
    return [c.call("inspect", {"execution": i}) for i in ids]


def timed_docs(c, ids):
    """The inspect documents, the seconds until the last answer's last byte came, and the seconds this
    process then took to decode them (Python's JSON, part of the figure but not of the daemon's work)."""
    lines = []
    t0 = time.perf_counter()
    for i in ids:
        c.send("inspect", {"execution": i})
        c.recv_line()
        lines.append(c.last_line)
    received = time.perf_counter() - t0
    t1 = time.perf_counter()
    docs = [lb.result_of(json.loads(line)) for line in lines]
    return docs, received, time.perf_counter() - t1


def settle(d, until, quiet=0.3, c=None, rtts=None):
    """Waits until the daemon has used at most 5% of a CPU over the last `quiet` s (its clock ticks are
    10 ms), or until `until`. With a client, asks `status` every 10 ms meanwhile and appends the round
    trips (ms) to rtts."""
    history = [(time.monotonic(), d.cpu_s())]
    while time.time() < until:
        if c is not None:
            t0 = time.perf_counter()
            c.call("status")
            rtts.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.01 if c is not None else 0.05)
        now = (time.monotonic(), d.cpu_s())
        history.append(now)
        old = [h for h in history if h[0] <= now[0] - quiet]
        if old and now[1] - old[-1][1] <= 0.05 * (now[0] - old[-1][0]) + 1e-9:
            return True
    return False


def run_layout(build, layout, n, sleep_s, calls, rtts, queue_limit=0):
    per = {"one": n, "split": SPLIT, "execs": 1}[layout]
    executions = max(1, n // per)
    n = per * executions
    config = CONFIG + (f"queues = {{ default = {{ concurrency = {queue_limit} }} }}\n" if queue_limit else "")
    d = lb.Daemon(build, {"sleepers.lua": SLEEPERS.format(n=per, concurrency=executions)}, config,
                  prefix="luaflow-sleep-")
    try:
        startup = d.start()
        c = d.client
        settle(d, time.time() + 5)
        idle = sample(d, c, calls, rtts)

        wake_at = time.time() + sleep_s
        cpu_submit = d.cpu_s()
        t_submit = time.time()
        for _ in range(executions):
            c.send("run", {"workflow": "sleepers", "input": {"wake_at": wake_at}})
        ids = [r["id"] for r in c.results(executions)]
        t_answered = time.time()
        # No inspect while they sleep: a 10 000-action inspect document is megabytes of JSON, which would
        # be the benchmark's own memory (see "afterwards, inspect" in the report). Every action returns
        # when it started and woke; checked after the run.
        start_rtts = []
        settle(d, wake_at - 1, c=c, rtts=start_rtts)
        t_settled = time.time()
        cpu_start = d.cpu_s() - cpu_submit
        rss_settled, hwm_settled = d.mem_kib()
        t_window = time.time()
        asleep = sample(d, c, calls, rtts)
        t_window_end = time.time()
        # From here to the first wake-up the daemon idles (sleep timers may fire early, see report()).
        cpu_before_wake = d.cpu_s()
        # Wake-up: wait for the execution(s) to end, asking `status` every 100 ms until wake_at (some may
        # wake early), then every 10 ms.
        wake_rtts = []
        while True:
            t0 = time.perf_counter()
            st = c.call("status")
            wake_rtts.append((time.perf_counter() - t0) * 1000)
            if st["running"] == 0 and st["queued"] == 0:
                break
            time.sleep(0.1 if time.time() < wake_at - 0.1 else 0.01)
        t_seen_done = time.time()
        cpu_wake = d.cpu_s() - cpu_before_wake
        rss_end, hwm_end = d.mem_kib()
        # One inspect of the finished run: what a user's `luaflowctl inspect` costs at this size.
        docs, received_s, decode_s = timed_docs(c, ids)
        inspect_s = received_s + decode_s
        rss_inspect, hwm_inspect = d.mem_kib()
        # Once more while another process asks `status` in a loop (not a thread: this one's JSON decoding
        # holds the GIL), apart from the timed one (on 2 cores the asker takes one): how long the daemon
        # holds its socket while it answers.
        asker = subprocess.Popen([sys.executable, "-c", STATUS_ASKER, d.sock], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
        asker.stdout.readline()  # connected and asking
        action_docs(c, ids)
        inspect_status_max_ms = float(asker.communicate("")[0].strip() or "nan")
        acts = [a for doc in docs for a in doc["actions"].values()]
        ok = sum(a["status"] == "succeeded" for a in acts)
        bad = [a for a in acts if a["status"] != "succeeded"]
        outs = [a["output"] for a in acts if isinstance(a.get("output"), dict)]
        started = [o["started"] for o in outs]
        woke = [o["woke"] for o in outs]
        kib = [o["kib"] for o in outs]
        fin = [datetime.fromisoformat(doc["finished_at"]).timestamp() for doc in docs if doc.get("finished_at")]
        asleep_in_window = sum(1 for o in outs if o["started"] <= t_window and o["woke"] >= t_window_end)
        return {
            "layout": layout, "queue_limit": queue_limit, "n": n, "executions": executions, "startup": startup,
            "idle": idle, "asleep": asleep, "rss_settled": rss_settled, "hwm_settled": hwm_settled, "hwm_end": hwm_end,
            "ok": ok, "bad": bad[:2], "asleep_in_window": asleep_in_window,
            "submit_answered": t_answered - t_submit, "settled": t_settled - t_submit,
            "coroutines_started": (max(started) - t_submit) if started else float("nan"),
            "early": (wake_at - min(woke)) if woke else float("nan"),
            "late": (max(woke) - wake_at) if woke else float("nan"),
            "wake_to_done": (max(fin) - min(woke)) if fin and woke else float("nan"),
            "wake_to_seen": t_seen_done - wake_at,
            "lua_kib": max(kib) if kib else float("nan"),
            "start_rtts": start_rtts, "wake_rtts": wake_rtts, "cpu_start": cpu_start, "cpu_wake": cpu_wake,
            "inspect_s": inspect_s, "inspect_rss": rss_inspect - rss_end, "inspect_hwm": hwm_inspect,
            "inspect_decode_s": decode_s,
            "inspect_status_max_ms": inspect_status_max_ms,
        }
    finally:
        d.stop()


def fmt_lat(xs):
    return f"p50 {pct(xs, 0.5):.2f} ms, p99 {pct(xs, 0.99):.2f} ms, max {max(xs):.2f} ms"


def report(r, floor):
    idle, asleep = r["idle"], r["asleep"]
    n = r["n"]
    slope = (r["rss_settled"] - idle["rss"]) * 1024 / n
    print(f"[{r['layout']}] {n} sleeping Lua actions in {r['executions']} execution(s)"
          f"{' (queues.default.concurrency = ' + str(r['queue_limit']) + ')' if r['queue_limit'] else ''}: "
          f"{r['ok']}/{n} succeeded"
          f"{'; e.g. ' + str(r['bad']) if r['bad'] else ''}; {r['asleep_in_window']}/{n} asleep through the "
          f"whole sampling window")
    print(f"  daemon start with the workflow loaded: {r['startup'] * 1000:.0f} ms to the socket answering")
    print(f"  start of all {n}: run answered after {r['submit_answered'] * 1000:.0f} ms; last coroutine started "
          f"{r['coroutines_started'] * 1000:.0f} ms after submit ({r['coroutines_started'] * 1e6 / n:.1f} us per "
          f"action); daemon CPU quiet again at {r['settled'] * 1000:.0f} ms; daemon CPU used "
          f"{r['cpu_start'] * 1000:.0f} ms ({r['cpu_start'] * 1e6 / n:.1f} us per action)")
    print(f"  RSS: idle {idle['rss'] / 1024:.1f} MiB (HWM {idle['hwm'] / 1024:.1f}); all asleep "
          f"{r['rss_settled'] / 1024:.1f} MiB (HWM {r['hwm_settled'] / 1024:.1f}); after the status calls "
          f"{asleep['rss'] / 1024:.1f} MiB; peak of the run (wake-up included) {r['hwm_end'] / 1024:.1f} MiB")
    print(f"  per sleeping action: {slope:,.0f} B of RSS, of which the workflow's Lua heap "
          f"{r['lua_kib'] * 1024 / n:,.0f} B (heap {r['lua_kib'] / 1024:.1f} MiB, seen by the last starter)")
    print(f"  daemon CPU over the sampling window: idle {idle['cpu']:.1%}, asleep {asleep['cpu']:.1%}")
    print(f"  luaflowctl --json status, process wall time ({len(idle['ctl'])} calls): asleep {fmt_lat(asleep['ctl'])}; "
          f"its own CPU p50 {pct(asleep['ctl_cpu'], 0.5):.2f} ms")
    print(f"    idle daemon: {fmt_lat(idle['ctl'])}; its own CPU p50 {pct(idle['ctl_cpu'], 0.5):.2f} ms")
    print(f"    floors: luaflowctl --version (no socket) {fmt_lat(floor['version'][0])}, CPU p50 "
          f"{pct(floor['version'][1], 0.5):.2f} ms; /bin/true {fmt_lat(floor['true'][0])}, CPU p50 "
          f"{pct(floor['true'][1], 0.5):.2f} ms")
    print(f"  socket status round trip ({len(idle['sock'])} calls): asleep {fmt_lat(asleep['sock'])}; "
          f"idle {fmt_lat(idle['sock'])}")
    print(f"  wake-up: first woke {r['early'] * 1000:.0f} ms before wake_at, last {r['late'] * 1000:.0f} ms after; "
          f"first wake to execution(s) finished {r['wake_to_done'] * 1000:.0f} ms "
          f"({r['wake_to_done'] * 1e6 / n:.1f} us per action; the client saw it {r['wake_to_seen'] * 1000:.0f} ms "
          f"after wake_at); daemon CPU {r['cpu_wake'] * 1000:.0f} ms ({r['cpu_wake'] * 1e6 / n:.1f} us per action)")
    print(f"  afterwards, inspect of the finished execution(s): {r['inspect_s'] * 1000:.0f} ms, of which Python's "
          f"decoding of the answer {r['inspect_decode_s'] * 1000:.0f} ms; RSS "
          f"+{r['inspect_rss'] / 1024:.1f} MiB (HWM {r['inspect_hwm'] / 1024:.1f} MiB); status round trips "
          f"meanwhile, on another connection, at most {r['inspect_status_max_ms']:.1f} ms")
    print(f"  status round trip while they start: max {max(r['start_rtts']):.1f} ms "
          f"({len(r['start_rtts'])} calls); while they wake and finish: max {max(r['wake_rtts']):.1f} ms "
          f"({len(r['wake_rtts'])} calls) (one loop turn each: the daemon does not answer meanwhile)")
    rss_ok = r["hwm_end"] / 1024 <= GOAL_RSS_MIB
    st_ok = pct(asleep["ctl"], 0.99) < GOAL_STATUS_MS
    sock_ok = pct(asleep["sock"], 0.99) < GOAL_STATUS_MS
    print(f"  goal peak RSS <= {GOAL_RSS_MIB} MiB: {'PASS' if rss_ok else 'MISS'} ({r['hwm_end'] / 1024:.1f} MiB); "
          f"goal status < {GOAL_STATUS_MS} ms: luaflowctl p99 {'PASS' if st_ok else 'MISS'} "
          f"({pct(asleep['ctl'], 0.99):.2f} ms), socket p99 {'PASS' if sock_ok else 'MISS'} "
          f"({pct(asleep['sock'], 0.99):.2f} ms)", flush=True)


def fit(xs, ys):
    """Least-squares slope and intercept."""
    mx, my = statistics.mean(xs), statistics.mean(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return b, my - b * mx


def main():
    ap = lb.arg_parser(__doc__)
    ap.add_argument("-n", type=int, default=10000, help="sleeping actions (default 10000)")
    ap.add_argument("--sizes", default="", help="extra sizes, e.g. 1000,5000, for the slope per action")
    ap.add_argument("--layout", choices=["one", "split", "execs", "both", "all"], default="both",
                    help="both: one and split; all: also execs")
    ap.add_argument("--sleep", type=float, default=0, help="s from submit to wake-up (default: by size)")
    ap.add_argument("--calls", type=int, default=50, help="luaflowctl status calls per window")
    ap.add_argument("--rtts", type=int, default=200, help="socket status round trips per window")
    ap.add_argument("--queue-limit", type=int, default=0,
                    help="configure queues.default.concurrency (>= N: no waiting, but the limit's bookkeeping)")
    args = ap.parse_args()
    lb.require(args.build, "luaflowctl")
    sizes = sorted({args.n, *(int(s) for s in args.sizes.split(",") if s)})
    layouts = {"both": ["one", "split"], "all": ["one", "split", "execs"]}.get(args.layout, [args.layout])
    floor = {"true": spawn_ms(["/bin/true"], args.calls),
             "version": spawn_ms([os.path.join(args.build, "luaflowctl"), "--version"], args.calls)}
    runs = []
    for layout in layouts:
        results = []
        for n in sizes:
            sleep_s = args.sleep or (5 + n / 2000)
            r = run_layout(args.build, layout, n, sleep_s, args.calls, args.rtts, args.queue_limit)
            report(r, floor)
            results.append(r)
            runs.append({"layout": layout, "n": r["n"], "executions": r["executions"], "succeeded": r["ok"],
                         "asleep_in_window": r["asleep_in_window"], "idle_rss_mib": r["idle"]["rss"] / 1024,
                         "peak_rss_mib": r["hwm_end"] / 1024, "ctl_p99_ms": pct(r["asleep"]["ctl"], 0.99),
                         "sock_p99_ms": pct(r["asleep"]["sock"], 0.99),
                         "ctl_version_p99_ms": pct(floor["version"][0], 0.99), "inspect_ms": r["inspect_s"] * 1000,
                         "inspect_decode_ms": r["inspect_decode_s"] * 1000,
                         "inspect_rss_mib": r["inspect_rss"] / 1024,
                         "inspect_status_max_ms": r["inspect_status_max_ms"]})
        if len(results) > 1:
            xs = [r["n"] for r in results]
            print(f"[{layout}] across sizes {xs}:")
            for label, ys in (("RSS all asleep", [r["rss_settled"] * 1024 for r in results]),
                              ("peak RSS", [r["hwm_end"] * 1024 for r in results]),
                              ("Lua heap", [r["lua_kib"] * 1024 for r in results])):
                b, a = fit(xs, ys)
                print(f"  {label}: {b:,.0f} B per action + {a / 2**20:.1f} MiB")
            for label, key in (("start of all", "coroutines_started"), ("wake to finished", "wake_to_done")):
                ys = [r[key] for r in results]
                print(f"  {label}: " + ", ".join(f"{x}: {y * 1000:.0f} ms ({y * 1e6 / x:.1f} us/action)"
                                                for x, y in zip(xs, ys)))
            print(flush=True)
    lb.emit_json(args, "sleep", {"runs": runs})


if __name__ == "__main__":
    main()
