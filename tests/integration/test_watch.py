"""`watch` triggers (SPEC 4, issue 17): one execution per matching file event once the file has been quiet
for 500 ms, with `ctx.input = { path=, event= }`; the files there when a watch first begins are its
baseline; what changed while the daemon was down runs once at the start, and nothing runs twice; a
directory removed and made again, or missing at first, is watched once it is there."""
import os
import shutil
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import Daemon, wait_for  # noqa: E402


def watcher(path, pattern="*.csv", events='{ "create", "modify" }'):
    return f"""
return workflow {{
  concurrency = 10,
  triggers = {{ watch = {{ path = "{path}", pattern = "{pattern}", events = {events} }} }},
  actions = {{ seen = {{ run = function(ctx) return ctx.input end }} }},
}}
"""


def outputs(d, workflow):
    """The inputs its executions saw, oldest first, once none is still running."""
    runs = d.ctl_json("executions", "--workflow", workflow)
    wait_for(lambda: all(e["status"] == "succeeded" for e in d.ctl_json("executions", "--workflow", workflow)),
             what=f"the executions of {workflow} to end")
    runs = d.ctl_json("executions", "--workflow", workflow)
    return [d.ctl_json("inspect", e["id"])["actions"]["seen"]["output"] for e in reversed(runs)]


def count(d, workflow):
    return len(d.ctl_json("executions", "--workflow", workflow))


def write(path, text, mode="w"):
    with open(path, mode) as f:
        f.write(text)


class WatchTest(unittest.TestCase):
    def setUp(self):
        self.d = Daemon()
        self.inbox = os.path.join(self.d.dir, "inbox")
        os.makedirs(self.inbox)
        write(os.path.join(self.inbox, "old.csv"), "there before the watch\n")
        self.d.write("inbox.lua", watcher(self.inbox))
        self.d.start()
        # The baseline is taken on the thread pool after the start.
        wait_for(lambda: "baseline" in self.d.log_text(), what="the watch to begin")

    def tearDown(self):
        harness.finish(self.d)

    def test_a_burst_of_writes_is_one_execution_per_file_and_the_baseline_runs_nothing(self):
        path = os.path.join(self.inbox, "a.csv")
        for i in range(10):  # written over ~300 ms: one quiet period ends after the last write
            write(path, f"row {i}\n", "a")
            time.sleep(0.03)
        write(os.path.join(self.inbox, "notes.txt"), "not matched\n")
        write(os.path.join(self.inbox, ".partial.csv"), "a leading dot is matched only by a dot\n")
        wait_for(lambda: count(self.d, "inbox") == 1, what="one execution")
        time.sleep(0.8)  # longer than a quiet period: nothing else comes
        self.assertEqual(outputs(self.d, "inbox"), [{"path": path, "event": "create"}])
        doc = self.d.ctl_json("inspect", self.d.ctl_json("executions", "--workflow", "inbox")[0]["id"])
        self.assertEqual(doc["trigger"], {"type": "watch", "path": path, "event": "create"})
        # A change is "modify"; rewriting the same bytes in place keeps the size but not the mtime.
        time.sleep(0.01)
        write(path, "another row\n", "a")
        wait_for(lambda: count(self.d, "inbox") == 2, what="the modify run")
        self.assertEqual(outputs(self.d, "inbox")[1], {"path": path, "event": "modify"})

    def test_what_changed_while_down_runs_once_after_the_start(self):
        write(os.path.join(self.inbox, "a.csv"), "1\n")
        wait_for(lambda: count(self.d, "inbox") == 1, what="a.csv's run")
        self.d.stop()
        write(os.path.join(self.inbox, "b.csv"), "dropped while the daemon was down\n")
        os.remove(os.path.join(self.inbox, "old.csv"))  # not watched for deletes: starts nothing
        self.d.start()
        wait_for(lambda: count(self.d, "inbox") == 2, what="b.csv's run")
        time.sleep(0.8)
        self.assertEqual([o["path"] for o in outputs(self.d, "inbox")],
                         [os.path.join(self.inbox, "a.csv"), os.path.join(self.inbox, "b.csv")])
        # And again: nothing changed, nothing runs.
        self.d.stop()
        self.d.start()
        time.sleep(1)
        self.assertEqual(count(self.d, "inbox"), 2)

    def test_a_directory_removed_and_made_again_is_watched_again(self):
        shutil.rmtree(self.inbox)
        wait_for(lambda: "was removed or moved" in self.d.log_text(), what="the removal to be noticed")
        os.makedirs(self.inbox)
        wait_for(lambda: "watching " + self.inbox + " again" in self.d.log_text(), timeout=5,
                 what="the directory to be watched again")
        write(os.path.join(self.inbox, "c.csv"), "after\n")
        wait_for(lambda: count(self.d, "inbox") == 1, timeout=5, what="c.csv's run")
        self.assertEqual(outputs(self.d, "inbox"), [{"path": os.path.join(self.inbox, "c.csv"), "event": "create"}])


class WatchMissingAndDeleteTest(unittest.TestCase):
    def test_a_missing_directory_is_watched_once_made_and_deletes_run_when_asked(self):
        d = Daemon()
        try:
            later = os.path.join(d.dir, "later")
            d.write("later.lua", watcher(later, pattern="*", events='{ "create", "delete" }'))
            d.start()
            wait_for(lambda: "cannot watch " + later in d.log_text(), what="the missing directory's warning")
            os.makedirs(later)
            wait_for(lambda: "baseline" in d.log_text(), timeout=5, what="the watch to begin")
            path = os.path.join(later, "x.bin")
            write(path, "x")
            wait_for(lambda: count(d, "later") == 1, what="the create run")
            os.remove(path)
            wait_for(lambda: count(d, "later") == 2, what="the delete run")
            self.assertEqual(outputs(d, "later"), [{"path": path, "event": "create"},
                                                   {"path": path, "event": "delete"}])
        finally:
            harness.finish(d)


if __name__ == "__main__":
    harness.main()
