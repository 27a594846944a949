"""fs.read, fs.write and fs.list: only inside sandbox.paths and the job's scratch directory; symlinks that
lead out are refused; binary content and large files round trip; the daemon keeps answering meanwhile."""
import os
import shutil
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Daemon  # noqa: E402

ROUNDTRIP = """
local DATA = "@DATA@"
return workflow { actions = { a = { run = function(ctx)
  local bytes = {}
  for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
  local bin = table.concat(bytes)
  fs.write("notes/hello.bin", bin)                -- relative: in the scratch directory
  fs.write(DATA .. "/out/deep/x.bin", bin .. bin)  -- absolute: in a sandbox path, parents made
  for _, name in ipairs({ "b", "a", "C", "10", "9" }) do fs.write("sorted/" .. name, name) end
  fs.write("notes/hello.bin", bin:reverse())        -- replaced, not appended
  local from_python = fs.read(DATA .. "/in.bin")
  local sum = 0
  for i = 1, #from_python do sum = sum + from_python:byte(i) end
  return {
    scratch = ctx.scratch,
    same_scratch = fs.read("notes/hello.bin") == bin:reverse(),
    same_abs = fs.read(DATA .. "/out/deep/x.bin") == bin .. bin,
    via_abs_scratch = fs.read(ctx.scratch .. "/notes/hello.bin") == bin:reverse(),
    list_scratch = fs.list("."),
    list_sorted = fs.list("sorted"),
    list_data = fs.list(DATA .. "/listme/"),
    python_len = #from_python,
    python_sum = sum,
  }
end } } }
"""

REFUSED = """
local DATA, SIBLING = "@DATA@", "@SIBLING@"
local function err(f, ...)
  local ok, e = pcall(f, ...)
  return ok and "no error" or e
end
return workflow { actions = {
  probe = { run = function(ctx)
    return {
      dotdot = err(fs.write, "../escape.txt", "x"),
      dotdot_abs = err(fs.read, DATA .. "/../etc/passwd"),
      etc = err(fs.read, "/etc/passwd"),
      link_out_read = err(fs.read, DATA .. "/etc/passwd"),
      link_out_write = err(fs.write, DATA .. "/etc/luaflow-escape", "x"),
      link_out_list = err(fs.list, DATA .. "/etc"),
      file_link_out = err(fs.read, DATA .. "/passwd_link"),
      sibling = err(fs.read, SIBLING .. "/secret.txt"),
      sibling_write = err(fs.write, SIBLING .. "/new.txt", "x"),
      missing = err(fs.read, "missing.txt"),
      not_string = err(fs.write, "x", { 1 }),
      link_in_abs = fs.read(DATA .. "/inner/f.txt"),
      link_in_rel = fs.read(DATA .. "/rel/f.txt"),
      link_in_list = fs.list(DATA .. "/inner"),
    }
  end },
  fails = { needs = { "probe" }, run = function() return fs.read(DATA .. "/nope/missing.txt") end },
} }
"""

LOAD_TIME = """
local ok, e = pcall(fs.list, ".")
return workflow { context = { load_error = e }, actions = { a = { run = function(ctx)
  return { load_error = ctx.shared.load_error }
end } } }
"""

BIG = """
local DATA = "@DATA@"
return workflow { actions = { a = { run = function(ctx)
  local s = string.rep("0123456789abcdef", 5 * 65536)    -- 5 MiB
  fs.write("big.txt", s)
  local back = fs.read("big.txt")
  local random = fs.read(DATA .. "/random.bin")
  fs.write(DATA .. "/random.copy", random)
  return { len = #back, same = back == s, random_len = #random }
end } } }
"""

# Each 64 MiB write (copy, write, fsync) takes a good part of a second in the pool; the stamps let the
# test check that the socket was served while each write was under way.
SLOW = """
return workflow { actions = { a = { timeout = "120s", run = function(ctx)
  local s = string.rep("x", 64 * 1024 * 1024)
  local windows = {}
  for i = 1, 3 do
    local before = time.now()
    fs.write("slow-" .. i, s)
    windows[#windows + 1] = { before, time.now() }
  end
  return windows
end } } }
"""


class FsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = None
        cls.dir = tempfile.mkdtemp(prefix="luaflow-fs-")
        cls.data = os.path.join(cls.dir, "data")
        cls.sibling = os.path.join(cls.dir, "data2")  # "data" is a prefix of its name, not its parent
        os.makedirs(os.path.join(cls.data, "sub"))
        os.makedirs(os.path.join(cls.data, "listme", "dir"))
        for name in ("b.txt", "a.txt", ".hidden"):
            open(os.path.join(cls.data, "listme", name), "w").close()
        os.symlink("../sub", os.path.join(cls.data, "listme", "link"))
        os.makedirs(cls.sibling)
        with open(os.path.join(cls.sibling, "secret.txt"), "w") as f:
            f.write("sibling secret")
        with open(os.path.join(cls.data, "sub", "f.txt"), "w") as f:
            f.write("inside")
        os.symlink("/etc", os.path.join(cls.data, "etc"))
        os.symlink("/etc/passwd", os.path.join(cls.data, "passwd_link"))
        os.symlink(os.path.join(cls.data, "sub"), os.path.join(cls.data, "inner"))  # absolute, stays in
        os.symlink("sub", os.path.join(cls.data, "rel"))
        cls.in_bin = bytes((i * 7 + 3) % 256 for i in range(4096))
        with open(os.path.join(cls.data, "in.bin"), "wb") as f:
            f.write(cls.in_bin)
        cls.random = os.urandom(5 << 20)
        with open(os.path.join(cls.data, "random.bin"), "wb") as f:
            f.write(cls.random)

        def sub(text):
            return text.replace("@DATA@", cls.data).replace("@SIBLING@", cls.sibling)

        config = ('shutdown_grace = "5s"\n'
                  f'sandbox = {{ memory = "256M", paths = {{ "{cls.data}" }} }}\n')
        d = Daemon({"roundtrip.lua": sub(ROUNDTRIP), "refused.lua": sub(REFUSED), "loadtime.lua": LOAD_TIME,
                    "big.lua": sub(BIG), "slow.lua": SLOW}, config)
        cls.d = d
        d.start()

    @classmethod
    def tearDownClass(cls):
        if cls.d:
            rc = cls.d.stop()
            log = cls.d.log_text()
            cls.d.cleanup()
            if rc != 0:
                raise AssertionError("luaflowd did not exit cleanly on SIGTERM:\n" + log[-3000:])
        shutil.rmtree(cls.dir, ignore_errors=True)

    def run_wait(self, workflow, expect_rc=0):
        return self.d.ctl_json("run", workflow, "--wait", expect_rc=expect_rc)

    def test_write_read_list_in_scratch_and_sandbox_path(self):
        report = self.run_wait("roundtrip")
        out = report["actions"]["a"]["output"]
        self.assertTrue(out["same_scratch"])
        self.assertTrue(out["same_abs"])
        self.assertTrue(out["via_abs_scratch"])
        self.assertEqual(out["list_scratch"], ["notes", "sorted"])
        self.assertEqual(out["list_sorted"], ["10", "9", "C", "a", "b"])
        self.assertEqual(out["list_data"], [".hidden", "a.txt", "b.txt", "dir", "link"])
        self.assertEqual(out["python_len"], len(self.in_bin))
        self.assertEqual(out["python_sum"], sum(self.in_bin))
        # The bytes on disk are exactly what Lua wrote: the scratch directory is the job's own.
        self.assertTrue(out["scratch"].startswith(self.d.state + "/scratch/" + report["id"] + "/"))
        with open(os.path.join(out["scratch"], "notes", "hello.bin"), "rb") as f:
            self.assertEqual(f.read(), bytes(range(256))[::-1])
        with open(os.path.join(self.data, "out", "deep", "x.bin"), "rb") as f:
            self.assertEqual(f.read(), bytes(range(256)) * 2)
        self.assertEqual(sorted(os.listdir(os.path.join(out["scratch"], "notes"))), ["hello.bin"])

    def test_refused_paths_name_the_path(self):
        report = self.run_wait("refused", expect_rc=1)
        out = report["actions"]["probe"]["output"]
        d = self.data
        allowed = f"(allowed: {d} and the job's scratch directory)"
        link_out = "is outside the sandbox: a symlink on the way leads out of " + d
        self.assertEqual(out["dotdot"], "fs.write: '../escape.txt' may not contain '..'")
        self.assertEqual(out["dotdot_abs"], f"fs.read: '{d}/../etc/passwd' may not contain '..'")
        self.assertEqual(out["etc"], f"fs.read: /etc/passwd is outside the sandbox {allowed}")
        self.assertEqual(out["link_out_read"], f"fs.read: {d}/etc/passwd {link_out}")
        self.assertEqual(out["link_out_write"], f"fs.write: {d}/etc/luaflow-escape {link_out}")
        self.assertEqual(out["link_out_list"], f"fs.list: {d}/etc {link_out}")
        self.assertEqual(out["file_link_out"], f"fs.read: {d}/passwd_link {link_out}")
        self.assertEqual(out["sibling"], f"fs.read: {self.sibling}/secret.txt is outside the sandbox {allowed}")
        self.assertEqual(out["sibling_write"],
                         f"fs.write: {self.sibling}/new.txt is outside the sandbox {allowed}")
        self.assertEqual(out["missing"], "fs.read: missing.txt: No such file or directory")
        self.assertEqual(out["not_string"], "fs.write: the content must be a string, got table")
        self.assertEqual(out["link_in_abs"], "inside")
        self.assertEqual(out["link_in_rel"], "inside")
        self.assertEqual(out["link_in_list"], ["f.txt"])
        self.assertFalse(os.path.exists("/etc/luaflow-escape"))
        self.assertFalse(os.path.exists(os.path.join(self.sibling, "new.txt")))
        self.assertFalse(os.path.exists(os.path.join(self.d.state, "scratch", report["id"], "escape.txt")))
        # Uncaught, a missing file fails the attempt with a message naming the path.
        fails = report["actions"]["fails"]
        self.assertEqual(fails["status"], "failed")
        self.assertIn(f"fs.read: {d}/nope/missing.txt: No such file or directory", fails["error"])

    def test_fs_is_refused_at_load_time(self):
        out = self.run_wait("loadtime")["actions"]["a"]["output"]
        self.assertEqual(out["load_error"], "fs.list: only allowed while an action runs (not at load time or "
                                            "inside a coroutine the action created)")

    def test_large_binary_files_round_trip(self):
        out = self.run_wait("big")["actions"]["a"]["output"]
        self.assertEqual(out, {"len": 5 << 20, "same": True, "random_len": len(self.random)})
        with open(os.path.join(self.data, "random.copy"), "rb") as f:
            self.assertEqual(f.read(), self.random)

    def test_the_daemon_answers_while_an_action_writes(self):
        run_id = self.d.ctl_json("run", "slow")["id"]
        calls = []  # (sent, answered) wall-clock seconds, comparable with the action's time.now()
        done = threading.Event()

        def poll():
            while not done.is_set():
                sent = time.time()
                st = self.d.call("inspect", {"execution": run_id})
                calls.append((sent, time.time()))
                if st["status"] not in ("queued", "running"):
                    done.set()

        t = threading.Thread(target=poll)
        t.start()
        t.join(timeout=120)
        done.set()
        report = self.d.ctl_json("inspect", run_id)
        self.assertEqual(report["status"], "succeeded", report)
        windows = report["actions"]["a"]["output"]
        self.assertEqual(len(windows), 3)
        worst = max(b - a for a, b in calls)
        self.assertLess(worst, 0.5, "the daemon stopped answering while fs.write ran")
        # A request sent after a write began and answered before it ended: the loop served the socket
        # while the write was in the thread pool (a write on the loop would hold every answer back).
        served = [w for w in windows if any(w[0] < sent and answered < w[1] for sent, answered in calls)]
        self.assertEqual(len(served), 3, f"no answer within a write: windows {windows}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
