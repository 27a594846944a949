"""Issue 14, the "also" list: how luaflowctl reads an execution's input. `-i n=0x10` is the string "0x10"
(only JSON's number grammar reads as a number, SPEC 6); an input file too large for one request is refused
naming the limit instead of "cannot reach luaflowd"; `--input-file /dev/zero` ends."""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import LUAFLOWCTL, DaemonTest  # noqa: E402

ECHO = """return workflow { actions = { a = { run = function(ctx)
  return { type = type(ctx.input.n), value = ctx.input.n } end } } }"""
TYPED = """return workflow { input = { n = { type = "number" } },
  actions = { a = { run = function(ctx) return ctx.input.n end } } }"""
MIB = 1 << 20


class CtlInputTest(DaemonTest):
    WORKFLOWS = {"echo.lua": ECHO, "typed.lua": TYPED}

    def echoed(self, value):
        report = self.run_wait("echo", "-i", "n=" + value)
        return report["actions"]["a"]["output"]

    def test_i_n_0x10_is_the_string_0x10_not_16(self):
        for text in ("0x10", "inf", "-inf", "nan", "1e999", " 12", "12 ", "+5", ".5", "010", "1_000"):
            self.assertEqual(self.echoed(text), {"type": "string", "value": text}, text)
        for text, number in (("16", 16), ("-1.5", -1.5), ("0", 0), ("1e3", 1000), ("2.50", 2.5)):
            self.assertEqual(self.echoed(text), {"type": "number", "value": number}, text)
        # A declared number is refused, naming the field and the value.
        rc, out, err = self.d.ctl("run", "typed", "-i", "n=0x10", "--wait")
        self.assertEqual(rc, 2)
        self.assertEqual(err, 'luaflowctl: input field \'n\': expected number, got string "0x10"\n')
        self.assertEqual(self.run_wait("typed", "-i", "n=0.25")["actions"]["a"]["output"], 0.25)

    def test_a_20_mb_input_file_is_refused_naming_the_limit_not_as_unreachable(self):
        path = os.path.join(self.d.dir, "big.json")
        with open(path, "w") as f:
            f.write('{"blob": "' + "x" * (20 * MIB - 12) + '"}')
        rc, out, err = self.d.ctl("run", "echo", "--input-file", path)
        self.assertEqual(rc, 2, err)
        self.assertEqual(err, f"luaflowctl: run: input file {path} is 20 MiB; the limit is 16 MiB\n")
        # A file within the limit whose request is not: the request's size is named.
        with open(path, "w") as f:
            f.write('{"blob": "' + "x" * (16 * MIB - 12) + '"}')
        rc, out, err = self.d.ctl("run", "echo", "--input-file", path)
        self.assertEqual(rc, 2, err)
        self.assertRegex(err, r"^luaflowctl: the run request is 16\.0 MiB as JSON; "
                              r"luaflowd takes requests up to 16 MiB\n$")
        # Just under it goes through.
        with open(path, "w") as f:
            f.write('{"blob": "' + "x" * (15 * MIB) + '"}')
        self.assertEqual(self.d.ctl("run", "echo", "--input-file", path, "--wait")[0], 0)

    def test_input_file_dev_zero_ends(self):
        rc, out, err = self.d.ctl("run", "echo", "--input-file", "/dev/zero", timeout=30)
        self.assertEqual(rc, 2)
        self.assertEqual(err, "luaflowctl: run: input file /dev/zero: larger than 16 MiB\n")
        with open("/dev/zero", "rb") as zero:
            p = subprocess.run([LUAFLOWCTL, "--socket", self.d.socket, "run", "echo", "--input-file", "-"],
                               stdin=zero, capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertEqual(p.stderr, "luaflowctl: run: input from standard input: larger than 16 MiB\n")
        rc, out, err = self.d.ctl("test", os.path.join(self.d.workflows, "echo.lua"), "--input-file", "/dev/zero",
                                  timeout=30)
        self.assertEqual(rc, 2)
        self.assertEqual(err, "luaflowctl: test: input file /dev/zero: larger than 16 MiB\n")
        rc, out, err = self.d.ctl("run", "echo", "--input-file", self.d.dir)
        self.assertEqual(rc, 2)
        self.assertEqual(err, f"luaflowctl: run: cannot read input file {self.d.dir}: Is a directory\n")

    def test_deeply_nested_input_is_refused_by_luaflowctl_not_a_crash_of_it(self):
        path = os.path.join(self.d.dir, "deep.json")
        with open(path, "w") as f:
            f.write('{"a": ' + "[" * 2_000_000 + "]" * 2_000_000 + "}")
        rc, out, err = self.d.ctl("run", "echo", "--input-file", path)
        self.assertEqual(rc, 2, err)  # it segfaulted (139), dumping the request
        self.assertEqual(err, f"luaflowctl: --input-file {path} is nested deeper than 128 levels\n")
        rc, out, err = self.d.ctl("kv", "set", "k", "[" * 60_000 + "]" * 60_000)
        self.assertEqual(rc, 2, err)
        self.assertEqual(err, "luaflowctl: kv set: VALUE is nested deeper than 128 levels\n")
        self.assertEqual(self.run_wait("echo", "--input", '{"n": [[[1]]]}')["actions"]["a"]["output"]["type"], "table")


if __name__ == "__main__":
    unittest.main()
