"""Issue 19: the state is private (0700 directories, 0600 files, whoever starts the daemon and whatever
its umask), an older world-readable state is made private at start, `status` shows the database's size,
and `durability = "power"` runs SQLite with synchronous = FULL."""
import os
import stat
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Daemon, main  # noqa: E402


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


class PrivateStateTest(unittest.TestCase):
    def setUp(self):
        self.d = Daemon({"w.lua": 'return workflow { actions = { a = { shell = "echo hi > out.txt" } } }'})

    def tearDown(self):
        rc = self.d.stop()
        self.assertEqual(rc, 0, self.d.log_text()[-3000:])
        self.d.cleanup()

    def start_with_umask(self, umask):
        old = os.umask(umask)
        try:
            self.d.start()
        finally:
            os.umask(old)

    def test_what_the_daemon_creates_is_its_users_alone(self):
        self.start_with_umask(0o022)  # the usual umask: files 0644 without the daemon's own
        report = self.d.ctl_json("run", "w", "--wait")
        self.assertEqual(mode(self.d.state), 0o700)
        for name in ("luaflow.db", "luaflow.db-wal", "luaflow.db-shm"):
            self.assertEqual(mode(os.path.join(self.d.state, name)), 0o600, name)
        scratch = os.path.join(self.d.state, "scratch", report["id"], "a")
        self.assertEqual(mode(os.path.join(self.d.state, "scratch")), 0o700)
        self.assertEqual(mode(scratch), 0o700)
        self.assertEqual(mode(os.path.join(scratch, "out.txt")), 0o600)  # its programs inherit the umask
        self.assertGreater(self.d.ctl_json("status")["database_bytes"], 4096)
        self.assertEqual(self.d.call("stats")["synchronous"], 1)  # NORMAL: survives kill -9

    def test_an_older_readable_state_is_made_private_at_start(self):
        self.start_with_umask(0o022)
        self.d.ctl_json("run", "w", "--wait")  # makes scratch/
        self.d.stop()
        os.chmod(os.path.join(self.d.state, "luaflow.db"), 0o644)
        os.chmod(os.path.join(self.d.state, "scratch"), 0o755)
        os.chmod(self.d.state, 0o755)
        self.start_with_umask(0o022)
        self.assertEqual(mode(os.path.join(self.d.state, "luaflow.db")), 0o600)
        self.assertEqual(mode(os.path.join(self.d.state, "scratch")), 0o700)
        self.assertEqual(mode(self.d.state), 0o755)  # a directory it did not make keeps its mode, with a warning
        self.assertIn("can be read by other users (mode 0755)", self.d.log_text())

    def test_durability_power_syncs_every_commit(self):
        with open(self.d.config, "a") as f:
            f.write('durability = "power"\n')
        self.start_with_umask(0o022)
        self.assertEqual(self.d.call("stats")["synchronous"], 2)  # FULL
        self.d.ctl_json("run", "w", "--wait")


if __name__ == "__main__":
    main()
