"""env() (issue 5): passed variables and secrets; a secret's value never shows in logs, outputs, the shared
context, errors or the daemon's log."""
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Daemon  # noqa: E402

SECRET = "s3cr3t-token-7f3a"

LEAKY = """
return workflow { actions = {
  use = { run = function(ctx)
    local key = env("API_KEY")
    log.info("calling with %s", key)
    ctx.shared.token = "Bearer " .. key
    return { key = key, passed = env("LUAFLOW_IT_VAR"), hidden = env("LUAFLOW_IT_HIDDEN"),
             missing = env("NOT_A_SECRET"), home = env("HOME") ~= nil }
  end },
  fail = { needs = { "use" }, run = function() error("rejected key " .. env("API_KEY")) end },
  echo = { needs = { "use" }, shell = "echo token=SECRET" },
} }
""".replace("SECRET", SECRET)


class EnvTest(unittest.TestCase):
    def test_secrets_are_readable_and_never_shown(self):
        secret_dir = tempfile.mkdtemp(prefix="luaflow-secret-")
        path = os.path.join(secret_dir, "api_key")
        with open(path, "w") as f:
            f.write(SECRET + "\n")
        os.environ["LUAFLOW_IT_VAR"] = "passed-value"
        os.environ["LUAFLOW_IT_HIDDEN"] = "not-passed"
        config = ('shutdown_grace = "5s"\n'
                  f'env = {{ pass = {{ "HOME", "LUAFLOW_IT_VAR" }}, secrets = {{ API_KEY = "{path}" }} }}\n')
        d = Daemon({"leaky.lua": LEAKY}, config)
        try:
            d.start()
            report = d.ctl_json("run", "leaky", "--wait", expect_rc=1)
            use = report["actions"]["use"]["output"]
            self.assertEqual(use["key"], "***")
            self.assertEqual(use["passed"], "passed-value")
            self.assertTrue(use["home"])
            self.assertNotIn("hidden", use)   # not in env.pass: nil
            self.assertNotIn("missing", use)
            self.assertEqual(report["shared"]["token"], "Bearer ***")
            self.assertEqual(report["actions"]["fail"]["error"].split(": ")[-1], "rejected key ***")
            logs = d.ctl_json("logs", report["id"])
            lines = [l["line"] for l in logs]
            self.assertIn("calling with ***", lines)
            self.assertIn("token=***", lines)
            everything = json.dumps(report) + json.dumps(logs) + d.log_text()
            self.assertNotIn(SECRET, everything)
            self.assertNotIn(SECRET, d.ctl("inspect", report["id"])[1])
        finally:
            d.cleanup()
            os.unlink(path)
            os.rmdir(secret_dir)

    def test_a_short_or_missing_secret_is_a_warning_and_nil(self):
        secret_dir = tempfile.mkdtemp(prefix="luaflow-secret-")
        short = os.path.join(secret_dir, "short")
        with open(short, "w") as f:
            f.write("ab")
        config = (f'env = {{ secrets = {{ SHORT = "{short}", GONE = "{secret_dir}/nope" }} }}\n')
        d = Daemon({"w.lua": 'return workflow { actions = { a = { run = function() '
                             'return { s = env("SHORT"), g = env("GONE") } end } } }'}, config)
        try:
            d.start()
            out = d.ctl_json("run", "w", "--wait")["actions"]["a"]["output"]
            self.assertIn(out, ({}, []))  # both nil: an empty table
            log = d.log_text()
            self.assertIn("env.secrets.SHORT", log)
            self.assertIn("shorter than 4 bytes", log)
            self.assertIn("env.secrets.GONE: cannot read", log)
        finally:
            d.cleanup()
            os.unlink(short)
            os.rmdir(secret_dir)


if __name__ == "__main__":
    unittest.main(verbosity=2)
