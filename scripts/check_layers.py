#!/usr/bin/env python3
"""Fails when an #include crosses a layer the wrong way (issue 15; ARCHITECTURE.md draws the same).

Each part of the code sits on a layer; a file may include its own part and the parts of lower layers,
never a higher or an equal one. ctl/ (luaflowctl) sees only common/. Known crossings that later steps of
issue 15 remove are listed in KNOWN with the reason; one that no longer occurs fails too, so the list
only ever shrinks.

    scripts/check_layers.py            check, print each violation as FILE:LINE: message
"""
import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

# Lower numbers are lower layers. Parts of one layer do not include each other.
LAYERS = {
    "common": 0,            # results, durations, times, JSON helpers, the socket protocol, logging
    "loop": 1,              # libuv: handles, timers, child processes, the thread pool, curl's multi
    "daemon/tz": 1,         # IANA time zones (libical's table): instants to wall-clock times and back
    "scripting": 2,         # LuaJIT states, the sandbox, tasks (coroutines), the workflow loader
    "daemon/store": 2,      # SQLite: schema, statements, the per-turn commit, every table
    "stdlib": 3,            # the Lua standard library, over the Services interface
    "daemon/config": 3,     # luaflowd.lua, read in a sandbox
    "daemon/registry": 4,   # the workflows directory: files, lib/, hot reload
    "notifiers": 4,         # the notification outbox: rules, messages, e-mail and webhook deliveries
    "daemon/exec": 5,       # executions: the state machine, queues, hosts, runners, launchers
    "daemon/schedule": 6,   # RRULE and cron, the scheduler that submits executions
    "daemon/triggers": 6,   # the other triggers that submit executions: file watches
    "daemon/testing": 6,    # luaflowctl test's case files and expectations (SPEC 13)
    "daemon/control": 7,    # the Unix socket and its handlers
    "daemon/http": 8,       # the HTTP API: its routes over the socket's handlers, the module's loader
    "daemon": 9,            # the wiring: engine, app (the daemon), offline (validate/test), options
}
ONLY = {"ctl": {"common"}}  # luaflowctl links luaflow_common only

# (file, included header): why it still crosses.
KNOWN = {}

INCLUDE = re.compile(r'\s*#\s*include\s+"([^"]+)"')


def part_of(path):
    """The part a repository path belongs to, or None for what is not layered (tests, bench, build)."""
    parts = path.split("/")
    if parts[0] == "daemon":
        sub = "daemon/" + parts[1] if len(parts) > 2 else "daemon"
        return sub if sub in LAYERS else "daemon"
    if parts[0] in LAYERS or parts[0] in ONLY:
        return parts[0]
    return None


def main():
    problems = []
    seen_known = set()
    for top in list(ONLY) + sorted({p.split("/")[0] for p in LAYERS}):
        for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
            for name in sorted(files):
                if not name.endswith((".cpp", ".hpp")):
                    continue
                path = os.path.relpath(os.path.join(dirpath, name), ROOT)
                src = part_of(path)
                with open(os.path.join(ROOT, path), encoding="utf-8") as f:
                    for lineno, line in enumerate(f, 1):
                        m = INCLUDE.match(line)
                        if not m or "/" not in m.group(1):
                            continue  # <system> headers, generated version.hpp
                        header = m.group(1)
                        dst = part_of(header)
                        if dst is None or dst == src:
                            continue
                        if src in ONLY:
                            ok = dst in ONLY[src]
                        else:
                            ok = LAYERS[dst] < LAYERS[src]
                        if ok:
                            continue
                        if (path, header) in KNOWN:
                            seen_known.add((path, header))
                            continue
                        if src in ONLY:
                            why = f"{src}/ may include only {', '.join(sorted(ONLY[src]))}/"
                        else:
                            why = f"{src} (layer {LAYERS[src]}) may not include {dst} (layer {LAYERS[dst]})"
                        problems.append(f"{path}:{lineno}: includes {header}: {why}")
    for (path, header), reason in sorted(KNOWN.items()):
        if (path, header) not in seen_known:
            problems.append(f"{path}: no longer includes {header}: remove it from KNOWN in scripts/check_layers.py")
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} layering problem(s); the layers are in scripts/check_layers.py and ARCHITECTURE.md")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
