"""Issue 14, item 7 (the files): a FIFO, a device behind a symlink or a huge file in the workflows
directory, under lib/ or named as a `script` hung the daemon at start, at a hot reload and in
`validate`/`--check` (read with std::ifstream on the loop, no regular-file check). Each is refused now,
naming the file, and the directory is read off the loop."""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import LUAFLOWCTL, LUAFLOWD, Daemon, main, wait_for  # noqa: E402

OK = 'return workflow { description = "%s", actions = { a = { run = function() return 1 end } } }\n'
SCRIPTED = 'return workflow { actions = { a = { script = "steps/pipe.lua" } } }\n'


class SourceFileHazardTest(unittest.TestCase):
    def setUp(self):
        self.d = Daemon({"ok.lua": OK % "v1", "scripted.lua": SCRIPTED})
        w = self.d.workflows
        os.makedirs(os.path.join(w, "lib"))
        os.makedirs(os.path.join(w, "steps"))
        os.mkfifo(os.path.join(w, "lib", "fifo.lua"))
        os.symlink("/dev/zero", os.path.join(w, "lib", "zero.lua"))
        os.mkfifo(os.path.join(w, "steps", "pipe.lua"))
        with open(os.path.join(w, "big.lua"), "w") as f:
            f.write("-" * (5 << 20) + "\n" + OK % "big")

    def tearDown(self):
        self.d.cleanup()

    def errors(self):
        return {w["id"]: w.get("error") or "" for w in self.d.ctl_json("list") if w["status"] == "error"}

    def test_fifos_devices_and_huge_files_are_refused_naming_them_and_nothing_hangs(self):
        d = self.d.start()
        errors = self.errors()
        self.assertIn("steps/pipe.lua cannot be read: is a FIFO, not read", errors.get("scripted", ""), errors)
        self.assertIn("larger than the limit of 4 MiB", errors.get("big", ""), errors)
        self.assertNotIn("ok", errors)
        log = d.log_text()
        self.assertIn("lib/fifo.lua: is a FIFO, not read", log)
        self.assertIn("lib/zero.lua: is a character device, not read", log)

        # A hot reload with a new FIFO under lib/: the daemon reads the directory and loads the edit.
        os.mkfifo(os.path.join(d.workflows, "lib", "late.lua"))
        d.write("ok.lua", OK % "v2")
        wait_for(lambda: d.ctl_json("show", "ok")["description"] == "v2", timeout=2,
                 what="the edit to load beside a new FIFO")
        wait_for(lambda: "lib/late.lua: is a FIFO, not read" in d.log_text(), timeout=2,
                 what="the new FIFO to be named in the log")

        # Offline checks read the same way: they end, and name the file.
        fifo_workflow = os.path.join(d.dir, "fifo.lua")
        os.mkfifo(fifo_workflow)
        p = subprocess.run([LUAFLOWCTL, "--json", "validate", fifo_workflow], capture_output=True, text=True,
                           timeout=20)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("is a FIFO, not read", p.stdout)
        p = subprocess.run([LUAFLOWD, "--check", "-c", d.config, "-w", d.workflows, "-s", d.state],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("steps/pipe.lua cannot be read: is a FIFO, not read", p.stdout)
        self.assertIn("larger than the limit of 4 MiB", p.stdout)
        self.assertEqual(d.stop(), 0)

    def test_a_fifo_named_as_a_workflow_is_listed_with_its_error_not_skipped(self):
        os.mkfifo(os.path.join(self.d.workflows, "piped.lua"))
        os.mkdir(os.path.join(self.d.workflows, "folder.lua"))  # a directory stays out, as lib/ does
        os.symlink("nowhere.lua", os.path.join(self.d.workflows, ".#ok.lua"))  # an editor's dangling lock
        d = self.d.start()
        errors = self.errors()
        self.assertEqual(errors.get("piped"), os.path.join(d.workflows, "piped.lua") + ": is a FIFO, not read",
                         errors)
        ids = {w["id"] for w in d.ctl_json("list")}
        self.assertNotIn("folder", ids)
        self.assertNotIn(".#ok", ids)
        # luaflowctl reload answers once the directory has been read (on the thread pool), with the same.
        r = d.ctl_json("reload", expect_rc=1)  # 1: some workflow has an error
        self.assertIn({"file": os.path.join(d.workflows, "piped.lua"), "line": 0, "message": "is a FIFO, not read"},
                      r["errors"])
        # Replaced by a regular file, it loads.
        os.unlink(os.path.join(d.workflows, "piped.lua"))
        d.write("piped.lua", OK % "piped")
        wait_for(lambda: "piped" not in self.errors(), timeout=3, what="piped.lua to load")
        self.assertEqual(d.ctl_json("show", "piped")["description"], "piped")
        p = subprocess.run([LUAFLOWD, "--check", "-c", d.config, "-w", d.workflows, "-s", d.state],
                           capture_output=True, text=True, timeout=20)
        self.assertNotIn("piped.lua", p.stdout)
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    main()
