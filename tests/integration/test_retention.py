"""Issue 19: a database that shrinks. 100 000 synthetic executions (10 workflows, most finished 40 days
ago, some recent, some still running): at start the pruner deletes exactly those finished more than
retention.days ago beyond each workflow's newest keep_per_workflow finished ones, with their logs, while
the socket keeps answering (bench/ measures how fast); then the freed pages go back to the file system
and the file shrinks."""
import os
import sqlite3
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Daemon, main, wait_for  # noqa: E402

N = 100_000
WORKFLOWS = 10
DAY_MS = 86_400_000
SANITIZED = os.environ.get("LUAFLOW_SANITIZED") == "1"


class RetentionTest(unittest.TestCase):
    def test_pruning_100000_executions_keeps_the_socket_answering_and_shrinks_the_file(self):
        wf = "return workflow { actions = { a = { run = function() return 1 end } } }"
        d = Daemon({f"w{k}.lua": wf for k in range(WORKFLOWS)})
        try:
            d.start()  # makes the schema
            d.stop()
            db_path = os.path.join(d.state, "luaflow.db")
            now = int(time.time() * 1000)
            old, recent = now - 40 * DAY_MS, now - DAY_MS
            db = sqlite3.connect(db_path)
            # The running ones stay running while the test looks (they are resumed at start).
            held = 'return workflow { actions = { a = { run = function() sleep(60) end } } }'
            db.execute("INSERT INTO definitions(digest, workflow, file, source, created_at) VALUES ('d', 'w0', "
                       "'w0.lua', ?, 0)", (held,))
            rows, logs, expected_gone = [], [], set()
            kept = {k: 0 for k in range(WORKFLOWS)}
            # Newest first, so that each workflow's newest finished ones are counted as kept.
            for seq in range(N, 0, -1):
                k = seq % WORKFLOWS
                status = "running" if seq % 997 == 0 else "succeeded"
                finished = None if status == "running" else (recent if seq > 95_000 else old)
                eid = f"e{seq:06d}"
                rows.append((eid, seq, f"w{k}", "d", status, '{"type":"manual"}', "{}", "{}", 0, 0, finished))
                logs.append((eid, "a", 1, 0, "stdout", "x" * 200))
                if status == "running":
                    continue
                if kept[k] < 100:
                    kept[k] += 1
                elif finished < now - 30 * DAY_MS:
                    expected_gone.add(eid)
            db.executemany("INSERT INTO executions(id, seq, workflow, definition, status, trigger, input, shared, "
                           "created_at, started_at, finished_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
            db.executemany("INSERT INTO logs(execution_id, action, attempt, time, stream, line) VALUES "
                           "(?,?,?,?,?,?)", logs)
            db.commit()
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.close()
            size_before = os.path.getsize(db_path)
            self.assertGreater(len(expected_gone), 80_000)

            with open(d.config, "w") as f:
                f.write('shutdown_grace = "2s"\nretention = { days = 30, keep_per_workflow = 100 }\n')
            t0 = time.monotonic()
            d.start()
            started = time.monotonic() - t0
            worst = 0.0
            while "retention: pruned" not in d.log_text():
                t0 = time.monotonic()
                d.call("status")
                worst = max(worst, time.monotonic() - t0)
                time.sleep(0.002)
            print(f"\nstart {started:.3f} s; pruned {len(expected_gone)} executions; socket round trip meanwhile: "
                  f"max {worst * 1000:.1f} ms", flush=True)
            # Timing is bench/'s to measure (ctest runs other tests beside this one): this catches a pass
            # that holds the loop for its whole length (it did, 1.2 s, before it went a turn at a time).
            self.assertLess(worst, 1.0 if SANITIZED else 0.25)
            wait_for(lambda: d.call("stats") is not None)
            ro = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)

            def vacuumed():
                # Pages other writes free after the last chunk wait for the next pass: nearly none here.
                return ro.execute("PRAGMA freelist_count").fetchone()[0] < 50
            # 500 pages a turn; ASan's build (and CI's parallel tests) stretch the turns.
            wait_for(vacuumed, timeout=150 if SANITIZED else 30, what="the freed pages given back")
            left = {r[0] for r in ro.execute("SELECT id FROM executions")}
            self.assertEqual(len(left), N - len(expected_gone))
            self.assertFalse(left & expected_gone)
            self.assertEqual(ro.execute("SELECT count(*) FROM logs").fetchone()[0], len(left))
            ro.close()
            self.assertEqual(d.stop(), 0)
            size_after = os.path.getsize(db_path)
            print(f"database file: {size_before / 1e6:.1f} MB before, {size_after / 1e6:.1f} MB after", flush=True)
            self.assertLess(size_after, size_before / 4)
        finally:
            d.stop()
            d.cleanup()


if __name__ == "__main__":
    main()
