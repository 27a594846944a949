"""Issue 8, the security model (SPEC 3): `sandbox.exec = false` refuses exec, cmd and shell, for
workflows from less trusted authors. The sandbox is not a privilege boundary while they run programs."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import DaemonTest, main  # noqa: E402


class SandboxExecOffTest(DaemonTest):
    CONFIG = 'shutdown_grace = "5s"\nsandbox = { exec = false }\n'
    WORKFLOWS = {
        "shell.lua": 'return workflow { actions = {\n  a = { run = function() return 1 end },\n'
                     '  b = { shell = "echo hi" },\n  c = { cmd = { "true" } },\n} }\n',
        "lua_exec.lua": 'return workflow { actions = { a = { run = function()\n'
                        '  local ok, err = pcall(exec, { "true" })\n  return { ok = ok, err = err }\nend } } }\n',
    }

    def test_cmd_and_shell_are_refused_at_load_naming_the_action(self):
        error = {w["id"]: w for w in self.d.ctl_json("list")}["shell"]["error"]
        self.assertIn("action 'b': runs a program (shell), which sandbox.exec = false in the config refuses",
                      error)
        import subprocess
        from harness import LUAFLOWD
        p = subprocess.run([LUAFLOWD, "-c", self.d.config, "-w", self.d.workflows, "-s", self.d.state, "--check"],
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("shell.lua:4: action 'c': runs a program (cmd)", p.stdout + p.stderr)

    def test_exec_raises(self):
        out = self.run_wait("lua_exec")["actions"]["a"]["output"]
        self.assertFalse(out["ok"])
        self.assertIn("exec: running programs is refused by sandbox.exec = false", out["err"])


class SandboxExecTypeTest(unittest.TestCase):
    def test_a_non_boolean_is_a_config_error(self):
        from harness import Daemon
        d = Daemon({}, 'sandbox = { exec = "no" }\n')
        try:
            import subprocess
            from harness import LUAFLOWD
            p = subprocess.run([LUAFLOWD, "-c", d.config, "-w", d.workflows, "-s", d.state, "--check"],
                               capture_output=True, text=True, timeout=60)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn('sandbox.exec: "no" is not true or false', p.stdout + p.stderr)
        finally:
            d.cleanup()


if __name__ == "__main__":
    main()
