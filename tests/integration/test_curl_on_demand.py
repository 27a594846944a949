"""libcurl on demand: luaflowd does not link it (no DT_NEEDED), an idle daemon and workflows that make no
request leave it unmapped, and the first http.* call loads it (read in /proc/PID/maps). Without a usable
libcurl.so.4, http.* raises naming it and the loader's reason, while other workflows and --check work."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import LUAFLOWD, Daemon  # noqa: E402

# A peer on 127.0.0.1 that answers every GET; prints its port.
PEER = r'''
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
'''

QUIET = """
return workflow { actions = { a = { run = function() return json.encode({ n = 1 }) end } } }
"""

CALLS = """
return workflow { actions = { a = { run = function(ctx)
  local r = http.get(ctx.input.url)
  return { status = r.status, body = r.body }
end } } }
"""


def maps_libcurl(pid):
    with open(f"/proc/{pid}/maps") as f:
        return [line.split()[-1] for line in f if "libcurl" in line]


class CurlOnDemandTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.peer = subprocess.Popen(["/usr/bin/python3", "-c", PEER], stdout=subprocess.PIPE, text=True)
        cls.url = f"http://127.0.0.1:{int(cls.peer.stdout.readline())}/x"

    @classmethod
    def tearDownClass(cls):
        cls.peer.terminate()
        cls.peer.wait(timeout=10)
        cls.peer.stdout.close()

    def run_wait(self, d, workflow, input_value=None, expect_rc=0):
        args = ["run", workflow, "--wait"]
        if input_value is not None:
            args[2:2] = ["--input", json.dumps(input_value)]
        return d.ctl_json(*args, expect_rc=expect_rc)

    def test_luaflowd_does_not_link_libcurl(self):
        dynamic = subprocess.run(["readelf", "-d", LUAFLOWD], capture_output=True, text=True, check=True).stdout
        needed = [line for line in dynamic.splitlines() if "(NEEDED)" in line]
        self.assertTrue(needed, dynamic)
        self.assertFalse([line for line in needed if "libcurl" in line], needed)

    def test_libcurl_is_mapped_at_the_first_request_only(self):
        d = Daemon({"quiet.lua": QUIET, "calls.lua": CALLS})
        try:
            d.start()
            pid = d.proc.pid
            self.assertEqual(maps_libcurl(pid), [])
            self.assertEqual(self.run_wait(d, "quiet")["status"], "succeeded")
            self.assertEqual(maps_libcurl(pid), [])
            report = self.run_wait(d, "calls", {"url": self.url})
            self.assertEqual(report["actions"]["a"]["output"], {"status": 200, "body": "hello"})
            self.assertNotEqual(maps_libcurl(pid), [])
            # Loaded once, and reused.
            report = self.run_wait(d, "calls", {"url": self.url})
            self.assertEqual(report["actions"]["a"]["output"]["status"], 200)
        finally:
            harness.finish(d)

    def test_without_libcurl_http_raises_and_the_rest_works(self):
        # The loader finds this libcurl.so.4 first (LD_LIBRARY_PATH), and it is not a library.
        fake = tempfile.mkdtemp(prefix="luaflow-no-curl-")
        open(os.path.join(fake, "libcurl.so.4"), "w").close()
        env = {**os.environ, "LD_LIBRARY_PATH": fake}
        d = Daemon({"quiet.lua": QUIET, "calls.lua": CALLS})
        try:
            # --check loads every workflow, calls.lua's http.get included, without calling it.
            p = subprocess.run([LUAFLOWD, "--check", "-c", "/nonexistent.lua", "-w", d.workflows],
                               capture_output=True, text=True, timeout=30, env=env)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn("2 workflow(s) ok", p.stdout)
            d.start(env={"LD_LIBRARY_PATH": fake})
            self.assertEqual(self.run_wait(d, "quiet")["status"], "succeeded")
            for _ in range(2):  # the same answer each time, and the daemon lives on
                a = self.run_wait(d, "calls", {"url": self.url}, expect_rc=1)["actions"]["a"]
                self.assertEqual(a["status"], "failed")
                self.assertIn("calls.lua:3: http.get: cannot load libcurl.so.4: ", a["error"])
                self.assertIn(f"{fake}/libcurl.so.4: file too short", a["error"])
            self.assertEqual(self.run_wait(d, "quiet")["status"], "succeeded")
            self.assertIn("HTTP requests fail: cannot load libcurl.so.4", d.log_text())
        finally:
            harness.finish(d)
            shutil.rmtree(fake, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
