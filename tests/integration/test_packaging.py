"""Issue 19: the install layout (cmake --install with DESTDIR), the systemd unit (systemd-analyze verify
and its security exposure), and luaflowctl's bash completion (complete -p, and the words it offers,
workflow and execution ids from a running daemon)."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import LUAFLOWCTL, LUAFLOWD, Daemon, main, missing_peer  # noqa: E402

BUILD = os.path.dirname(LUAFLOWD)
SOURCE = os.environ.get("LUAFLOW_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
COMPLETION = os.path.join(SOURCE, "packaging", "luaflowctl.bash-completion")


class InstallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # The build's own prefix (/usr/local by default; a package's is /usr), into a DESTDIR.
        with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
            cls.prefix = re.search(r"^CMAKE_INSTALL_PREFIX:PATH=(.*)$", f.read(), re.M).group(1)
        cls.etc = "/etc" if cls.prefix == "/usr" else cls.prefix + "/etc"  # as GNUInstallDirs has it
        cls.root = tempfile.mkdtemp(prefix="luaflow-install-")
        out = subprocess.run(["cmake", "--install", BUILD], env={**os.environ, "DESTDIR": cls.root},
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root)

    def path(self, p):
        """Where /usr/x (or /etc/x) of a /usr install is, under DESTDIR, for this build's prefix."""
        if p.startswith("/etc/"):
            p = self.etc + p[4:]
        elif p.startswith("/usr/"):
            p = self.prefix + p[4:]
        return os.path.join(self.root, p.lstrip("/"))

    def test_everything_is_in_its_fhs_place(self):
        for p in ("/usr/sbin/luaflowd", "/usr/bin/luaflowctl",
                  "/usr/lib/systemd/system/luaflowd.service", "/usr/lib/sysusers.d/luaflow.conf",
                  "/usr/lib/tmpfiles.d/luaflow.conf", "/etc/luaflow/luaflowd.lua",
                  "/usr/share/bash-completion/completions/luaflowctl", "/usr/share/man/man1/luaflowctl.1.gz",
                  "/usr/share/man/man5/luaflowd.lua.5.gz", "/usr/share/man/man5/luaflow-workflow.5.gz",
                  "/usr/share/man/man8/luaflowd.8.gz", "/usr/share/luaflow/examples/workflows/hello.lua"):
            self.assertTrue(os.path.exists(self.path(p)), p)
        self.assertTrue(os.access(self.path("/usr/sbin/luaflowd"), os.X_OK))
        # The HTTP module where luaflowd looks for it: LIBDIR/luaflow (lib, or lib/<multiarch> under /usr).
        found = [r for r, _, files in os.walk(self.path("/usr/lib")) if "luaflow-http.so" in files]
        self.assertEqual([os.path.basename(r) for r in found], ["luaflow"])
        with open(self.path("/usr/lib/systemd/system/luaflowd.service")) as f:
            self.assertIn(f"ExecStart={self.prefix}/sbin/luaflowd\n", f.read())
        # The shipped config and example workflows are valid as they are.
        out = subprocess.run([self.path("/usr/sbin/luaflowd"), "--check", "-c", self.path("/etc/luaflow/luaflowd.lua"),
                              "-w", self.path("/usr/share/luaflow/examples/workflows")], capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)

    def test_the_unit_verifies_and_its_exposure_is_low(self):
        if not shutil.which("systemd-analyze"):
            missing_peer("systemd-analyze (package systemd) is not installed")
        unit = os.path.join(self.root, "luaflowd.service")
        with open(self.path("/usr/lib/systemd/system/luaflowd.service")) as f:
            text = f.read().replace(f"ExecStart={self.prefix}/sbin/luaflowd",
                                    "ExecStart=" + self.path("/usr/sbin/luaflowd"))
        with open(unit, "w") as f:
            f.write(text)
        # Its Documentation= names man pages: the installed ones.
        env = {**os.environ, "MANPATH": self.path("/usr/share/man")}
        out = subprocess.run(["systemd-analyze", "verify", unit], env=env, capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertEqual(out.stderr.strip(), "")
        out = subprocess.run(["systemd-analyze", "security", "--offline=yes", unit], capture_output=True, text=True)
        score = float(re.search(r"Overall exposure level for luaflowd.service: ([\d.]+)", out.stdout).group(1))
        print(f"systemd-analyze security: exposure {score}", flush=True)
        self.assertLessEqual(score, 2.5, out.stdout)


def complete(*words, env=None):
    """The words luaflowctl's completion offers for `words` (the last one being completed)."""
    script = (f"source {COMPLETION}\n"
              f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}; COMPREPLY=()\n"
              "_luaflowctl; printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    return sorted(w for w in out.stdout.split("\n") if w)


class CompletionTest(unittest.TestCase):
    def test_it_is_registered(self):
        out = subprocess.run(["bash", "-c", f"source {COMPLETION}; complete -p luaflowctl"], capture_output=True,
                             text=True)
        self.assertEqual(out.stdout.strip(), "complete -F _luaflowctl luaflowctl")

    def test_commands_and_options(self):
        self.assertEqual(complete("luaflowctl", "re"), ["reload", "retry"])
        self.assertIn("notify", complete("luaflowctl", ""))
        self.assertEqual(complete("luaflowctl", "--json", "ins"), ["inspect"])
        self.assertEqual(complete("luaflowctl", "run", "w", "--w"), ["--wait"])
        self.assertEqual(complete("luaflowctl", "kv", ""), ["delete", "get", "list", "set"])
        self.assertEqual(complete("luaflowctl", "executions", "--status", "t"), ["timed_out"])
        self.assertEqual(complete("luaflowctl", "test", "x.lua", "--"),
                         ["--at", "--config", "--fast", "--input", "--input-file", "--junit", "--mock"])
        self.assertEqual(complete("luaflowctl", "validate", "-"), ["--config", "-c"])

    def test_workflow_and_execution_ids_come_from_the_daemon(self):
        d = Daemon({"backup.lua": "return workflow { actions = { a = { run = function() return 1 end } } }",
                    "build.lua": "return workflow { actions = { a = { run = function() return 1 end } } }"})
        try:
            d.start()
            exec_id = d.ctl_json("run", "backup", "--wait")["id"]
            ctl = os.path.dirname(LUAFLOWCTL)
            env = {**os.environ, "PATH": ctl + os.pathsep + os.environ["PATH"]}
            # `show` takes a workflow or an execution: the random id is offered too when it starts with "b".
            want = sorted(["backup", "build"] + ([exec_id] if exec_id.startswith("b") else []))
            self.assertEqual(complete("luaflowctl", "--socket", d.socket, "show", "b", env=env), want)
            self.assertEqual(complete("luaflowctl", "--socket", d.socket, "inspect", "", env=env), [exec_id])
            env["LUAFLOW_SOCKET"] = d.socket
            self.assertEqual(complete("luaflowctl", "executions", "--workflow", "bu", env=env), ["build"])
        finally:
            d.stop()
            d.cleanup()


if __name__ == "__main__":
    main()
