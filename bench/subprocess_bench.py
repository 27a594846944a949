#!/usr/bin/env python3
"""Subprocess action throughput (issue: `cmd = { "/bin/true" }` actions per second, goal >= 80 % of the raw
`uv_spawn` rate), each figure next to the raw rate measured in the same run, rounds interleaved.

  python3 bench/subprocess_bench.py --build build-bench [--rounds 3] [-m 300] [--wide 100] [--raw-n 500]
                                    [--wide-reps 3] [--no-ignore] [--json]

The limit: BUILD/bench/raw_spawn (bench/raw_spawn.cpp), a bare libuv loop running /bin/true to its end
with K = 1 and 2 in flight, stdout and stderr as pipes read to EOF and a new process group, as the daemon
does, each child in a fresh directory holding a 300-byte file made just before it (--job-files, on the
daemon's filesystem): the scratch directory and LUAFLOW_INPUT that SPEC 5 gives every job. The same
without the files (the bare spawn), and with stdio ignored too (K = 1, unless --no-ignore), are printed
next to it. On 2 cores, K = 2 is about the most the machine gives. Two more raw lines explain the gap rather than set the goal: uv_spawn from a process with the
daemon's anonymous memory and number of mappings (read from the running luaflowd: libuv 1.44 forks,
and a fork copies the memory map, which the child's execve then tears down), and posix_spawn (no copy)
from the same process.

luaflowd runs in a temp dir with two workflows: `one` (one action `cmd = { "/bin/true" }`,
concurrency = M) and `wide` (--wide independent `cmd = { "/bin/true" }` actions). Two daemons, started
once: `unlimited` (no queue limit: all ready actions spawn at once) and `queue2`
(`queues = { default = { concurrency = 2 } }`). Per round:
  seq    `one`, M executions, 1 in flight: `run` with wait = true, the next one sent when it answers
         (end to end, as `luaflowctl run --wait`); compared with raw K = 1
  pair   the same with 2 in flight; compared with raw K = 2
  burst  M `run`s sent at once (no wait), timed until `stats` shows nothing running or queued (polled
         every 5 ms); compared with raw K = 2
  wide   one execution of `wide`, `run` with wait = true, actions/s (--wide-reps per round); raw K = 2
  lua    (reference, unlimited only) a 1-action Lua workflow in sequence like seq: what an execution
         costs the engine without a subprocess
burst and wide run on both daemons; seq and pair on `unlimited` (with 1-2 in flight the queue limit is
never reached). Each figure is the median over the rounds; the ratio is to the median raw rate.
Next to each: the daemon's CPU per action (user + system; its own, and its reaped children's, which
include the forked child's work before its execve) and SQLite commits per action (`stats`); raw_spawn
prints the same CPU split. On a loaded machine the CPU per action moves less than the wall-clock rate.
Prints PASS/MISS against 80 %; always exits 0 (benchmarks measure, they do not assert).
"""
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import luaflow_bench as lb  # noqa: E402  (the daemon starter and socket client all benchmarks use)

GOAL = 0.80

ONE = """
return workflow {{ concurrency = {m}, actions = {{ t = {{ cmd = {{ "/bin/true" }} }} }} }}
"""

WIDE = """
local actions = {{}}
for i = 1, {n} do actions[string.format("t%03d", i)] = {{ cmd = {{ "/bin/true" }} }} end
return workflow {{ concurrency = 10, actions = actions }}
"""

LUA = """
return workflow { concurrency = 1000, actions = { t = { run = function() return true end } } }
"""

CONFIG = 'shutdown_grace = "1s"\n'
QUEUE2 = CONFIG + "queues = { default = { concurrency = 2 } }\n"


def memory(d):
    """(VmRSS MiB, RssAnon MiB, mappings) of daemon d: what a fork copies."""
    rss, anon = d.mem_kib("VmRSS", "RssAnon")
    with open(f"/proc/{d.proc.pid}/maps") as f:
        maps = sum(1 for _ in f)
    return rss / 1024, anon / 1024, maps


def raw(build, n, k, stdio, spawner="uv", ballast_mib=0, vmas=0, job_files=None):
    extra = ["--job-files", job_files] if job_files else []
    out = subprocess.run([os.path.join(build, "bench", "raw_spawn"), "-n", str(n), "-k", str(k), "--stdio", stdio,
                          "--spawner", spawner, "--ballast", str(ballast_mib), "--vmas", str(vmas), *extra],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def check_report(doc):
    if doc.get("status") != "succeeded":
        raise RuntimeError(f"execution {doc.get('id')} ended {doc.get('status')}: {doc.get('error')}")


def measure(d, c, fn, actions):
    """Runs fn(c): actions/s, the daemon's CPU per action (its own; its reaped children's) and its SQLite
    commits per action."""
    commits0 = c.call("stats")["commits"]
    own0, kids0 = d.cpu_s(children=True)
    t0 = time.monotonic()
    fn(c)
    dt = time.monotonic() - t0
    own1, kids1 = d.cpu_s(children=True)
    commits = c.call("stats")["commits"] - commits0  # `stats` itself writes nothing
    return {"rate": actions / dt, "cpu_us": (own1 - own0) * 1e6 / actions, "kids_us": (kids1 - kids0) * 1e6 / actions,
            "commits": commits / actions}


def in_flight(workflow, m, k):
    """m executions of workflow, k in flight, each `run` with wait = true."""

    def go(c):
        sent = done = 0
        while sent < min(k, m):
            c.send("run", {"workflow": workflow, "wait": True})
            sent += 1
        while done < m:
            r = c.recv()
            if "error" in r:
                raise RuntimeError(r["error"])
            check_report(r["result"])
            done += 1
            if sent < m:
                c.send("run", {"workflow": workflow, "wait": True})
                sent += 1

    return go


def burst(m):
    def go(c):
        for _ in range(m):
            c.send("run", {"workflow": "one"})
        c.results(m)
        c.wait_idle()

    return go


def wide(c):
    check_report(c.call("run", {"workflow": "wide", "wait": True}))


def failures(c):
    return len(c.call("executions", {"status": "failed", "limit": 10}))


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    ap = lb.arg_parser(__doc__)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("-m", type=int, default=300, help="executions per seq/pair/burst measurement")
    ap.add_argument("--wide", type=int, default=100, help="actions of the `wide` workflow")
    ap.add_argument("--wide-reps", type=int, default=3, help="`wide` executions per round and daemon")
    ap.add_argument("--raw-n", type=int, default=500, help="spawns per raw_spawn measurement")
    ap.add_argument("--no-ignore", action="store_true", help="skip raw_spawn with stdio ignored")
    args = ap.parse_args()
    build = args.build
    lb.require(build, os.path.join("bench", "raw_spawn"))
    wfs = {"one.lua": ONE.format(m=args.m), "wide.lua": WIDE.format(n=args.wide), "lua.lua": LUA}
    daemons = {name: lb.Daemon(build, wfs, config, prefix="luaflow-subprocess-")
               for name, config in (("unlimited", CONFIG), ("queue2", QUEUE2))}
    results = {}  # name -> list of measure() dicts

    def add(name, r):
        results.setdefault(name, []).append(r)

    # (label, stdio, K, spawner, like the daemon's address space)
    raw_kinds = [("pipes", "pipes", 1, "uv", False), ("pipes", "pipes", 2, "uv", False),
                 ("job files", "pipes", 1, "uv", False), ("job files", "pipes", 2, "uv", False)]
    if not args.no_ignore:
        raw_kinds += [("ignore", "ignore", 1, "uv", False)]
    raw_kinds += [("daemon-sized", "pipes", 2, "uv", True),
                  ("posix_spawn daemon-sized", "pipes", 2, "posix_spawn", True)]
    t_start = time.monotonic()
    try:
        for d in daemons.values():
            d.start(timeout=60)
        clients = {name: d.client for name, d in daemons.items()}
        # Warm-up: the first spawns of a fresh daemon fault in its pages and create the scratch tree.
        for name, c in clients.items():
            in_flight("one", 20, 1)(c)
            wide(c)
        mem = {name: memory(d) for name, d in daemons.items()}
        # The raw spawner from a process the daemon's size: its anonymous memory and its mappings.
        ballast = round(mem["unlimited"][1])
        vmas = max(0, mem["unlimited"][2] - raw(build, 1, 1, "pipes")["maps"])
        for rnd in range(args.rounds):
            for label, stdio, k, spawner, sized in raw_kinds:
                # On the daemon's filesystem, in a directory of its own per measurement (kept to the end,
                # as the daemon keeps its scratch directories: a removal would slow the next inode
                # allocations on an ext4 without a journal).
                files = None
                if label == "job files":
                    files = os.path.join(daemons["unlimited"].dir, f"raw-job-files-{rnd}-{k}")
                    os.makedirs(files)
                r = raw(build, args.raw_n, k, stdio, spawner, ballast if sized else 0, vmas if sized else 0, files)
                add(f"raw {label} K={k}", {"rate": r["rate"], "cpu_us": r["cpu_us"], "kids_us": r["children_cpu_us"]})
            u, cu = daemons["unlimited"], clients["unlimited"]
            add("seq", measure(u, cu, in_flight("one", args.m, 1), args.m))
            add("pair", measure(u, cu, in_flight("one", args.m, 2), args.m))
            add("lua seq", measure(u, cu, in_flight("lua", args.m, 1), args.m))
            for name in ("unlimited", "queue2"):
                d, c = daemons[name], clients[name]
                add(f"burst {name}", measure(d, c, burst(args.m), args.m))
                for _ in range(args.wide_reps):
                    add(f"wide {name}", measure(d, c, wide, args.wide))
            print(f"round {rnd + 1}/{args.rounds} done at {time.monotonic() - t_start:.0f} s", file=sys.stderr,
                  flush=True)
        failed = {name: failures(c) for name, c in clients.items()}
    except BaseException:
        for d in daemons.values():
            d.stop()
        raise
    for d in daemons.values():
        d.stop(remove=False)

    med = {name: median([r["rate"] for r in rs]) for name, rs in results.items()}

    def spread(name):
        xs = [r["rate"] for r in results[name]]
        return f"{min(xs):,.0f}..{max(xs):,.0f}"

    print(f"subprocess actions, /bin/true; {args.rounds} rounds, medians (min..max); "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    what = {"pipes": "uv_spawn, stdout/stderr piped", "ignore": "uv_spawn, stdio ignored   ",
            "job files": "uv_spawn, piped, in a fresh directory with a 300-byte file (a job's files, SPEC 5)",
            "daemon-sized": f"uv_spawn, piped, from a process of luaflowd's size (+{ballast} MiB anonymous, "
                            f"+{vmas} mappings)",
            "posix_spawn daemon-sized": "posix_spawn + pidfd, piped, same size (what a non-forking spawner gets)"}
    for label, stdio, k, spawner, sized in raw_kinds:
        name = f"raw {label} K={k}"
        print(f"  raw {what[label]}, {k} in flight: {med[name]:8,.0f} spawns/s  ({spread(name)}; "
              f"{args.raw_n} spawns); CPU {median([r['cpu_us'] for r in results[name]]):.0f} us/spawn "
              f"+ children {median([r['kids_us'] for r in results[name]]):.0f} us")
    print("  luaflowd after warm-up: " + ", ".join(f"{n} RSS {v[0]:.1f} MiB, anonymous {v[1]:.1f} MiB, {v[2]} mappings"
                                                 for n, v in mem.items()) +
          " (uv_spawn forks: the copy of the memory map and its teardown at execve grow with these)")
    # The limit is the spawn with the files SPEC 5 gives every job: its fresh scratch directory and its
    # LUAFLOW_INPUT. Their inodes cost 0.1-1 ms on this VM's ext4 (no journal), depending on how many
    # inodes were deleted in the minutes before: as much as the spawn itself after a removal. The bare
    # spawn's ratio is printed too.
    rows = [
        ("seq", f"1-action workflow, 1 in flight (run --wait), {args.m} executions", "raw job files K=1"),
        ("pair", f"1-action workflow, 2 in flight (run --wait), {args.m} executions", "raw job files K=2"),
        ("burst unlimited", f"1-action workflow, {args.m} submitted at once, no queue limit", "raw job files K=2"),
        ("burst queue2", f"1-action workflow, {args.m} submitted at once, queue concurrency 2", "raw job files K=2"),
        ("wide unlimited", f"{args.wide}-action execution, no queue limit", "raw job files K=2"),
        ("wide queue2", f"{args.wide}-action execution, queue concurrency 2", "raw job files K=2"),
    ]
    figures = {"m": args.m, "wide": args.wide, "rounds": args.rounds, "lua_seq_per_s": med["lua seq"],
               "failed": sum(failed.values()), "rows": []}
    for name, label, ref in rows:
        ratio = med[name] / med[ref]
        bare = ref.replace("job files", "pipes")
        figures["rows"].append({"name": name, "label": label, "rate": med[name], "limit": ref,
                                "limit_rate": med[ref], "ratio": ratio, "bare_limit_rate": med[bare],
                                "bare_ratio": med[name] / med[bare]})
        cpu = median([r["cpu_us"] for r in results[name]])
        kids = median([r["kids_us"] for r in results[name]])
        print(f"  {label}: {med[name]:,.0f} actions/s ({spread(name)}) vs {ref} {med[ref]:,.0f}/s: "
              f"{ratio:.0%} {'PASS' if ratio >= GOAL else 'MISS'} (vs {bare} {med[bare]:,.0f}/s: "
              f"{med[name] / med[bare]:.0%}); daemon CPU {cpu:.0f} us/action "
              f"+ children {kids:.0f} us; {median([r['commits'] for r in results[name]]):.2f} commits/action")
    cpu = median([r["cpu_us"] for r in results["lua seq"]])
    print(f"  reference: 1-action Lua workflow, 1 in flight (run --wait): {med['lua seq']:,.0f} executions/s "
          f"({spread('lua seq')}); daemon CPU {cpu:.0f} us/execution, "
          f"{median([r['commits'] for r in results['lua seq']]):.2f} commits (the engine's part of `seq`)")
    print(f"  failed executions seen: {failed}; bench took {time.monotonic() - t_start:.0f} s; its temp dirs "
          f"({', '.join(d.dir for d in daemons.values())}) are being removed in the background", flush=True)
    for d in daemons.values():
        d.remove(background=True)
    lb.emit_json(args, "subprocess", figures)


if __name__ == "__main__":
    main()
