#!/usr/bin/env python3
"""The torture test (issue 14): a luaflowd under mixed load killed with SIGKILL at random moments and
restarted, again and again. After each kill and restart it checks what SPEC 5 promises:

- the store is sound: `PRAGMA integrity_check` (sqlite3 CLI) says ok, read before the restart;
- every run that luaflowctl's protocol acknowledged (an answer with an id) is there;
- no action that had succeeded ran again: each action appends "EXEC EXECUTION ACTION ATTEMPT" to a file
  (O_APPEND, through the shell) when it starts. An action running at the kill may run again (at least
  once: a new attempt); one seen succeeded may not, and no attempt number runs twice;
- every kv write that returned is there: the driver's own kv_set calls, and an action's kv.set, which the
  action marks with a "KV ..." line once it returned;
- a child execution is started once per parent action (a retried attempt gets the same child back);
- no orphaned process: every process carrying our LUAFLOW_JOB marker belongs to an attempt that runs.

    python3 tests/torture/torture.py [--kills N] [--seed S]     (default 50; 1000 for the long run)

Exits 0 when every check held after every restart; else 1, listing the violations. Needs the binaries
(LUAFLOWD, LUAFLOWCTL, as the integration tests; default build/) and the sqlite3 CLI.
"""
import argparse
import json
import os
import random
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import Daemon, gone, wait_for  # noqa: E402

# {log} is the EXEC log. Every action has retries to spare, so an attempt interrupted by a kill is retried.
MIXED = r"""
local LOG = "{log}"
-- One line appended with O_APPEND (">>") by a shell, as a subprocess action does it.
local function mark(ctx, kind, action)
  local line = kind .. " " .. ctx.execution.id .. " " .. action .. " " .. ctx.execution.attempt
  local r = exec({{ "/bin/sh", "-c", 'printf "%s\n" "$1" >> "$2"', "sh", line, LOG }})
  if r.code ~= 0 then error("cannot append to " .. LOG) end
end
return workflow {{
  concurrency = 4,
  retries = 1000, retry_delay = "50ms", backoff = "fixed",
  actions = {{
    compute = {{ run = function(ctx)
      mark(ctx, "EXEC", "compute")
      local s = 0
      for i = 1, 300000 do s = s + i % 7 end
      return {{ sum = s }}
    end }},
    nap = {{ needs = {{ "compute" }}, run = function(ctx)
      mark(ctx, "EXEC", "nap")
      sleep(0.05 + math.random() * 0.3)
      log.info("rested")
    end }},
    sub = {{ needs = {{ "compute" }},
      cmd = {{ "/bin/sh", "-c", 'printf "EXEC %s sub %s\n" "$1" "$2" >> "$3"; sleep 0.2; echo done',
              "sh", "{{{{ execution.id }}}}", "{{{{ execution.attempt }}}}", LOG }} }},
    -- A job that leaves a detached grandchild behind (issue 14 item 16): it must end with the job.
    detach = {{ needs = {{ "compute" }},
      shell = 'echo "EXEC $LUAFLOW_JOB" | tr / " " >> "{log}"; setsid sleep 30 </dev/null >/dev/null 2>&1 & echo started' }},
    store = {{ needs = {{ "nap" }}, run = function(ctx)
      mark(ctx, "EXEC", "store")
      kv.set("exec:" .. ctx.execution.id, ctx.execution.attempt)
      mark(ctx, "KV", "store")
    end }},
    child = {{ needs = {{ "sub" }}, run = function(ctx)
      mark(ctx, "EXEC", "child")
      local report = workflows.run("leaf", {{ parent = ctx.execution.id }}, {{ wait = true }})
      return {{ child = report.id, status = report.status }}
    end }},
  }},
}}
"""

LEAF = r"""
return workflow {{
  concurrency = 8,
  retries = 1000, retry_delay = "50ms", backoff = "fixed",
  actions = {{
    leaf = {{ cmd = {{ "/bin/sh", "-c", 'printf "EXEC %s leaf %s\n" "$1" "$2" >> "$3"; sleep 0.1',
                     "sh", "{{{{ execution.id }}}}", "{{{{ execution.attempt }}}}", "{log}" }} }},
  }},
}}
"""

FINAL = {"succeeded", "failed", "cancelled", "timed_out"}


class Torture:
    def __init__(self, kills, seed, max_unfinished=24):
        self.kills = kills
        self.rng = random.Random(seed)
        self.seed = seed
        self.max_unfinished = max_unfinished
        self.d = Daemon(config='shutdown_grace = "2s"\n')
        self.exec_log = os.path.join(self.d.dir, "exec.log")
        open(self.exec_log, "w").close()
        self.d.write("mixed.lua", MIXED.format(log=self.exec_log))
        self.d.write("leaf.lua", LEAF.format(log=self.exec_log))
        self.lock = threading.Lock()
        self.acked_runs = []        # run ids the daemon answered
        self.acked_kv = {}          # key -> value of kv_set calls the daemon answered
        self.seen_succeeded = {}    # (execution, action) -> EXEC lines when first seen succeeded
        self.finished = set()       # executions seen in a final state with every action recorded
        self.violations = []
        self.reported = set()       # each violation is reported once, when first seen
        self.by_kind = {}           # violations counted by kind, for the summary
        self.stats = {"kills": 0, "restarts": 0, "kills_during_start": 0, "restart_ms": [], "refused_starts": 0}

    # ---- what the daemon answers ----

    def violation(self, kind, what):
        if what in self.reported:
            return  # a state that lasts is reported when first seen
        self.reported.add(what)
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
        self.violations.append(f"after kill {self.stats['kills']}: {what}")
        print("VIOLATION:", self.violations[-1], flush=True)

    def call(self, method, params=None):
        return self.d.call(method, params)

    def exec_lines(self):
        """(kind, execution, action, attempt) of each complete line of the EXEC log."""
        with open(self.exec_log) as f:
            text = f.read()
        out = []
        for line in text.split("\n")[:-1]:
            parts = line.split(" ")
            if len(parts) == 4:
                out.append(tuple(parts))
        return out

    # ---- load ----

    def submitter(self, stop):
        """Runs and kv writes, until `stop`; a request the kill cuts short is not acknowledged."""
        n = 0
        while not stop.is_set():
            n += 1
            try:
                if len(self.acked_runs) - len(self.finished) < self.max_unfinished:
                    rid = self.call("run", {"workflow": "mixed", "input": {"n": n}})["id"]
                    with self.lock:
                        self.acked_runs.append(rid)
                key = f"ack-{self.stats['kills']}-{n}"
                self.call("kv_set", {"key": key, "value": n})
                with self.lock:
                    self.acked_kv[key] = n
            except (OSError, AssertionError, ValueError):
                return  # the daemon is gone: what was not answered is not acknowledged
            stop.wait(self.rng.uniform(0.02, 0.25))

    # ---- checks ----

    def check_integrity(self):
        db = os.path.join(self.d.state, "luaflow.db")
        p = subprocess.run(["sqlite3", db, "PRAGMA integrity_check;"], capture_output=True, text=True)
        if p.returncode != 0 or p.stdout.strip() != "ok":
            self.violation("integrity", f"integrity_check: {p.stdout.strip()} {p.stderr.strip()}")

    def check_store(self):
        """With the daemon up again: acknowledged runs and kv writes, re-runs, children."""
        listed = {e["id"]: e for e in self.call("executions", {"limit": 1_000_000})}
        with self.lock:
            acked_runs = list(self.acked_runs)
            acked_kv = dict(self.acked_kv)
        for rid in acked_runs:
            if rid not in listed:
                self.violation("run_lost", f"acknowledged run {rid} is missing")
        kv = {e["key"]: e["value"] for e in self.call("kv_list")}
        for key, value in acked_kv.items():
            if kv.get(key) != value:
                self.violation("kv_lost", f"acknowledged kv write {key}={value} reads {kv.get(key)!r}")
        lines = self.exec_lines()
        counts = {}
        attempts = {}
        for kind, eid, action, attempt in lines:
            if kind != "EXEC":
                continue
            counts[(eid, action)] = counts.get((eid, action), 0) + 1
            attempts[(eid, action, attempt)] = attempts.get((eid, action, attempt), 0) + 1
        # An action seen succeeded must not have started since.
        for key, seen in self.seen_succeeded.items():
            if counts.get(key, 0) != seen:
                self.violation("succeeded_ran_again", f"succeeded action {key[1]} of {key[0]} ran again "
                               f"({seen} EXEC line(s) when seen succeeded, {counts.get(key, 0)} now)")
        for (eid, action, attempt), n in attempts.items():
            if n > 1:
                self.violation("attempt_ran_twice", f"attempt {attempt} of {action} in {eid} started {n} times")
        # kv.set that returned (a KV line) is there.
        mixed_kv = None
        for kind, eid, action, attempt in lines:
            if kind == "KV":
                if mixed_kv is None:
                    mixed_kv = {e["key"] for e in self.call("kv_list", {"workflow": "mixed"})}
                if f"exec:{eid}" not in mixed_kv:
                    self.violation("kv_lost", f"kv.set of {eid} (attempt {attempt}) returned but the key is missing")
        # Record what succeeded now, with the EXEC lines it had; read the file after the reports.
        for eid, e in listed.items():
            if eid in self.finished:
                continue
            report = self.call("inspect", {"execution": eid})
            done = report["status"] in FINAL
            for action, a in report["actions"].items():
                if a["status"] == "succeeded" and (eid, action) not in self.seen_succeeded:
                    self.seen_succeeded[(eid, action)] = None
                elif a["status"] not in FINAL and a["status"] != "skipped":
                    done = False
            if done:
                self.finished.add(eid)
        counts_now = {}
        for kind, eid, action, attempt in self.exec_lines():
            if kind == "EXEC":
                counts_now[(eid, action)] = counts_now.get((eid, action), 0) + 1
        for key, seen in self.seen_succeeded.items():
            if seen is None:
                self.seen_succeeded[key] = counts_now.get(key, 0)
        self.check_children(listed)

    def check_children(self, listed):
        parents = {}
        for eid, e in listed.items():
            if e["workflow"] != "leaf":
                continue
            try:
                parent = self.call("inspect", {"execution": eid}).get("input", {}).get("parent")
            except AssertionError:
                continue
            parents.setdefault(parent, []).append(eid)
        for parent, children in parents.items():
            if len(children) > 1:
                self.violation("child_started_twice", f"{parent} started {len(children)} children: {children}")

    def marked_processes(self, ours):
        """pid -> LUAFLOW_JOB of the processes whose marker names one of our executions."""
        found = {}
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    env = f.read().split(b"\0")
            except OSError:
                continue
            for var in env:
                if var.startswith(b"LUAFLOW_JOB="):
                    job = var[len(b"LUAFLOW_JOB="):].decode(errors="replace")
                    if job.split("/")[0] in ours and not gone(int(pid)):
                        found[int(pid)] = job
        return found

    def check_orphans(self):
        ours = {e["id"] for e in self.call("executions", {"limit": 1_000_000})}

        def orphans():
            left = {}
            for pid, job in self.marked_processes(ours).items():
                parts = job.split("/")
                if len(parts) != 3:
                    left[pid] = job
                    continue
                eid, action, attempt = parts
                try:
                    a = self.call("inspect", {"execution": eid})["actions"].get(action, {})
                except AssertionError:
                    a = {}
                if not (a.get("status") == "running" and str(a.get("attempts")) == attempt):
                    left[pid] = job
            return left
        # A job that is ending now may still be there for a moment.
        left = orphans()
        deadline = time.monotonic() + 1
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = {pid: job for pid, job in orphans().items() if pid in left}
        for pid, job in sorted(left.items()):
            self.violation("orphan", f"orphaned process {pid} ({job}): {self.cmdline(pid)}")
            try:
                os.kill(pid, 9)  # reported once; the next checks see the next ones
            except OSError:
                pass

    @staticmethod
    def cmdline(pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            return "?"

    # ---- the cycle ----

    def start(self):
        t0 = time.monotonic()
        for attempt in range(5):
            try:
                self.d.start()
                break
            except AssertionError as e:
                self.stats["refused_starts"] += 1
                self.violation("restart_failed", f"restart failed (try {attempt + 1}): {str(e)[-400:]}")
                if self.d.proc and self.d.proc.poll() is None:
                    self.d.kill9()
        else:
            raise SystemExit("luaflowd does not start any more")
        self.stats["restarts"] += 1
        self.stats["restart_ms"].append((time.monotonic() - t0) * 1000)

    def kill_during_start(self):
        """Sometimes the kill comes while the daemon starts: recovery, the leftover sweep, the first load."""
        import subprocess as sp
        from harness import LUAFLOWD
        with open(self.d.log, "a") as logf:
            self.d.proc = sp.Popen([LUAFLOWD, "-c", self.d.config, "-w", self.d.workflows, "-s", self.d.state,
                                    "--socket", self.d.socket], stdout=logf, stderr=logf)
        time.sleep(self.rng.uniform(0, 0.15))
        self.d.kill9()
        self.stats["kills_during_start"] += 1

    def run(self):
        t_begin = time.monotonic()
        self.start()
        for k in range(self.kills):
            stop = threading.Event()
            thread = threading.Thread(target=self.submitter, args=(stop,), daemon=True)
            thread.start()
            time.sleep(self.rng.uniform(0.0, 2.0))
            self.d.kill9()
            self.stats["kills"] += 1
            stop.set()
            thread.join(timeout=30)
            self.check_integrity()
            if self.rng.random() < 0.1:
                self.kill_during_start()
                self.check_integrity()
            self.start()
            self.check_store()
            self.check_orphans()
            if (k + 1) % 10 == 0:
                print(f"{k + 1} kills, {len(self.acked_runs)} acknowledged runs, {len(self.finished)} finished, "
                      f"{len(self.violations)} violation(s), {time.monotonic() - t_begin:.0f} s", flush=True)
        # The end: everything acknowledged finishes, then the last checks, then a clean stop.
        try:
            wait_for(lambda: all(e["status"] in FINAL for e in self.call("executions", {"limit": 1_000_000})),
                     timeout=120, interval=0.5, what="every execution to finish")
        except AssertionError as e:
            self.violation("unfinished", str(e))
        self.check_store()
        self.check_orphans()
        statuses = {}
        for e in self.call("executions", {"limit": 1_000_000}):
            statuses[e["status"]] = statuses.get(e["status"], 0) + 1
        rc = self.d.stop()
        if rc != 0:
            self.violation("unclean_stop", f"luaflowd exited {rc} on SIGTERM")
        restart = sorted(self.stats["restart_ms"])
        print(json.dumps({
            "seed": self.seed,
            "kills": self.stats["kills"],
            "kills_during_start": self.stats["kills_during_start"],
            "restarts": self.stats["restarts"],
            "refused_starts": self.stats["refused_starts"],
            "acknowledged_runs": len(self.acked_runs),
            "acknowledged_kv_writes": len(self.acked_kv),
            "executions_by_status": statuses,
            "actions_seen_succeeded": len(self.seen_succeeded),
            "restart_ms_median": round(restart[len(restart) // 2]) if restart else None,
            "restart_ms_max": round(restart[-1]) if restart else None,
            "seconds": round(time.monotonic() - t_begin),
            "violations": len(self.violations),
            "violations_by_kind": self.by_kind,
        }, indent=1), flush=True)
        return not self.violations


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--seed", type=int, default=None, help="default: random, printed")
    ap.add_argument("--keep", action="store_true", help="keep the temp directory (daemon log, EXEC log)")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print(f"torture: {args.kills} kills, seed {seed}", flush=True)
    t = Torture(args.kills, seed)
    print(f"directory {t.d.dir}", flush=True)
    ok = False
    try:
        ok = t.run()
    finally:
        if t.d.proc and t.d.proc.poll() is None:
            t.d.kill9()
        if ok and not args.keep:
            t.d.cleanup()
        else:
            print(f"kept {t.d.dir}", flush=True)
    for v in t.violations:
        print("VIOLATION:", v)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
