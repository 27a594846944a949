"""http.request / http.get / http.post (SPEC 3) against a real peer on 127.0.0.1: Python's
ThreadingHTTPServer run by /usr/bin/python3, with routes that echo, answer a status, answer slowly, and
count TCP connections. Any status is a result; no answer raises naming the method and URL; waiting
requests never block the daemon, run at once, reuse connections, and are dropped at cancel or timeout."""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import Daemon, wait_for  # noqa: E402

PEER = r'''
import json, select, socket, ssl, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, parse_qs

lock = threading.Lock()
stats = {"connections": 0, "requests": 0, "inflight": 0, "max_inflight": 0, "dropped": []}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so that reuse shows

    def log_message(self, *args):
        pass

    def reply(self, status, body, ctype="application/json", headers=()):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            try:
                self.wfile.write(data)
            except OSError:  # the client gave up (a size cap, a timeout)
                self.close_connection = True

    def client_gone(self):
        r, _, _ = select.select([self.connection], [], [], 0)
        return bool(r) and self.connection.recv(1, socket.MSG_PEEK) == b""

    def handle_one(self):
        url = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        with lock:
            stats["requests"] += 1
        if url.path == "/echo":
            self.reply(200, {"method": self.command, "path": self.path, "body": body.decode("utf-8", "replace"),
                             "headers": {k.lower(): v for k, v in self.headers.items()}})
        elif url.path.startswith("/status/"):
            code = int(url.path.rsplit("/", 1)[1])
            self.reply(code, b"status %d" % code, "text/plain", [("X-Status", str(code))])
        elif url.path == "/headers":
            self.reply(200, b"ok", "text/plain", [("X-Multi", "one"), ("X-MULTI", "two"),
                                                  ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
        elif url.path == "/redirect":
            self.reply(302, b"", "text/plain", [("Location", "/echo?from=redirect")])
        elif url.path == "/goto":
            self.reply(int(q.get("code", "302")), b"", "text/plain", [("Location", q["to"])])
        elif url.path == "/loop":
            self.reply(302, b"", "text/plain", [("Location", "/loop")])
        elif url.path == "/big":
            self.reply(200, b"x" * int(q["n"]), "application/octet-stream")
        elif url.path == "/stream":
            # No Content-Length: the size shows only as the bytes come.
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            chunk = b"y" * 65536
            try:
                for _ in range(int(q["n"]) // len(chunk)):
                    self.wfile.write(chunk)
            except OSError:
                pass
            self.close_connection = True
        elif url.path == "/slow":
            # Answers after `secs` unless the client hangs up first, which is recorded as dropped.
            deadline = time.monotonic() + float(q.get("secs", "1"))
            with lock:
                stats["inflight"] += 1
                stats["max_inflight"] = max(stats["max_inflight"], stats["inflight"])
            try:
                while time.monotonic() < deadline:
                    if self.client_gone():
                        with lock:
                            stats["dropped"].append(self.path)
                        self.close_connection = True
                        return
                    time.sleep(0.02)
                self.reply(200, {"tag": q.get("tag")})
            finally:
                with lock:
                    stats["inflight"] -= 1
        elif url.path == "/stats":
            with lock:
                self.reply(200, dict(stats))
        else:
            self.reply(404, b"no such route", "text/plain")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_one


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def get_request(self):
        conn, addr = super().get_request()
        with lock:
            stats["connections"] += 1
        if context:
            conn = context.wrap_socket(conn, server_side=True)
        return conn, addr


context = None
if len(sys.argv) == 3:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[1], sys.argv[2])
server = Server(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
'''


class Peer:
    """The peer above as a subprocess of Debian's python; stopped by PID."""

    def __init__(self, tls=None):
        self.dir = tempfile.mkdtemp(prefix="luaflow-http-peer-")
        script = os.path.join(self.dir, "peer.py")
        with open(script, "w") as f:
            f.write(PEER)
        self.proc = subprocess.Popen(["/usr/bin/python3", script, *(tls or [])], stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())
        self.base = f"http://127.0.0.1:{self.port}"

    def stats(self):
        with urllib.request.urlopen(self.base + "/stats", timeout=10) as r:
            return json.loads(r.read())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def free_port():
    """A port nobody listens on (bound and released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


EXCHANGE = """
return workflow { concurrency = 10, actions = { a = { run = function(ctx)
  local base = ctx.input.base
  local got = http.get(base .. "/echo?q=1", { headers = { ["X-Token"] = "abc", Accept = "application/json" } })
  local text = http.post(base .. "/echo", "plain text")
  local tbl = http.post(base .. "/echo", { items = { 1, 2 }, name = "x" }, { timeout = "5s" })
  local put = http.request{ method = "put", url = base .. "/echo", body = "<a/>",
                            headers = { ["Content-Type"] = "application/xml" }, timeout = 5 }
  local head = http.request{ method = "HEAD", url = base .. "/echo" }
  local del = http.request{ method = "DELETE", url = base .. "/echo" }
  local multi = http.get(base .. "/headers")
  return { got = got, got_echo = json.decode(got.body), text = json.decode(text.body),
           tbl = json.decode(tbl.body), put = json.decode(put.body), head = head,
           del = json.decode(del.body), multi = multi.headers }
end } } }
"""

STATUSES = """
return workflow { actions = { a = { run = function(ctx)
  local base = ctx.input.base
  local r404 = http.get(base .. "/nothing-here")
  local r500 = http.post(base .. "/status/500", "x")
  local redirected = http.get(base .. "/redirect")
  local ok, loop_err = pcall(http.get, base .. "/loop")
  -- To another host name (the same server): the credentials stay behind.
  local other = ctx.input.other or base
  local away = http.get(base .. "/goto?to=" .. other .. "/echo", {
    headers = { Authorization = "Bearer secret", Cookie = "s=1", ["X-Kept"] = "yes" } })
  local after_post = http.post(base .. "/goto?code=303&to=/echo", "data")
  return { r404 = r404, r500 = r500, redirected = { status = redirected.status, body = json.decode(redirected.body) },
           loop_err = loop_err, away = json.decode(away.body), after_post = json.decode(after_post.body) }
end } } }
"""

# One line per call, so the error's position shows which.
FAILING = """
return workflow { actions = { a = { run = function(ctx)
  local opts = { timeout = ctx.input.timeout }
  local r = http.get(ctx.input.url, opts)
  return r.status
end } } }
"""

WAITING = """
return workflow { actions = { a = { timeout = "60s", run = function(ctx)
  local r = http.get(ctx.input.base .. "/slow?secs=30&tag=" .. ctx.input.tag, { timeout = "60s" })
  return r.status
end } } }
"""

ACTION_TIMEOUT = """
return workflow { actions = { a = { timeout = "500ms", run = function(ctx)
  local r = http.get(ctx.input.base .. "/slow?secs=30&tag=action-timeout")
  return r.status
end } } }
"""

PARALLEL = """
local actions = {}
for i = 1, 50 do
  actions["a" .. i] = { run = function(ctx)
    local r = http.get(ctx.input.base .. "/slow?secs=1.5&tag=" .. i)
    return json.decode(r.body).tag
  end }
end
return workflow { actions = actions }
"""

REUSE = """
return workflow { actions = { a = { run = function(ctx)
  local base = ctx.input.base
  local before = json.decode(http.get(base .. "/stats").body)
  for i = 1, 20 do
    assert(http.get(base .. "/echo?i=" .. i).status == 200)
  end
  local after = json.decode(http.get(base .. "/stats").body)
  return { before = before.connections, after = after.connections, requests = after.requests - before.requests }
end } } }
"""

BAD_ARGUMENTS = """
return workflow { actions = { bad = { run = function(ctx)
  local base = ctx.input.base
  local results = {}
  for name, f in pairs({
      url_type = function() return http.get(42) end,
      scheme = function() return http.get("ftp://127.0.0.1/x") end,
      no_scheme = function() return http.get("127.0.0.1/x") end,
      missing_url = function() return http.request{ method = "GET" } end,
      not_table = function() return http.request("http://x/") end,
      unknown = function() return http.request{ url = base, hedaers = {} } end,
      method = function() return http.request{ url = base, method = "GE T" } end,
      headers = function() return http.get(base, { headers = "x" }) end,
      header_value = function() return http.get(base, { headers = { A = {} } }) end,
      header_break = function() return http.get(base, { headers = { A = "x\\r\\nEvil: 1" } }) end,
      header_name = function() return http.get(base, { headers = { ["Bad Name"] = "x" } }) end,
      header_key = function() return http.get(base, { headers = { "x" } }) end,
      body = function() return http.post(base, 42) end,
      body_json = function() return http.post(base, { f = function() end }) end,
      timeout = function() return http.get(base, { timeout = "soon" }) end,
      timeout_zero = function() return http.get(base, { timeout = 0 }) end,
      get_opts = function() return http.get(base, { url = base }) end,
      too_many = function() return http.get(base, {}, 3) end }) do
    local ok, err = pcall(f)
    results[name] = ok and "no error" or err
  end
  local ok, err = pcall(function() local r = http.get(42); return r end)
  results.position = err
  return results
end } } }
"""

AT_LOAD = """
local r = http.get("http://127.0.0.1:9/")
return workflow { actions = { a = { run = function() return 1 end } } }
"""


class HttpTest(unittest.TestCase):
    """One daemon and one peer for the class; each test runs its own workflows."""

    @classmethod
    def setUpClass(cls):
        cls.peer = Peer()
        cls.d = Daemon({"exchange.lua": EXCHANGE, "statuses.lua": STATUSES, "failing.lua": FAILING,
                        "waiting.lua": WAITING, "action_timeout.lua": ACTION_TIMEOUT, "parallel.lua": PARALLEL,
                        "reuse.lua": REUSE, "bad.lua": BAD_ARGUMENTS, "at_load.lua": AT_LOAD})
        try:
            cls.d.start()
        except BaseException:
            cls.d.cleanup()
            cls.peer.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            harness.finish(cls.d)
        finally:
            cls.peer.stop()

    def run_wait(self, workflow, input_value, expect_rc=0):
        return self.d.ctl_json("run", workflow, "--input", json.dumps(input_value), "--wait", expect_rc=expect_rc)

    def base(self):
        return {"base": self.peer.base}

    def assert_daemon_healthy(self):
        self.assertEqual(self.d.ctl("status")[0], 0)
        out = self.run_wait("statuses", self.base())["actions"]["a"]["output"]
        self.assertEqual(out["r404"]["status"], 404)

    def test_get_post_request_send_headers_and_bodies(self):
        out = self.run_wait("exchange", self.base())["actions"]["a"]["output"]
        got = out["got_echo"]
        self.assertEqual(out["got"]["status"], 200)
        self.assertEqual(out["got"]["headers"]["content-type"], "application/json")  # names lowercased
        self.assertEqual(got["method"], "GET")
        self.assertEqual(got["path"], "/echo?q=1")
        self.assertEqual(got["headers"]["x-token"], "abc")
        self.assertEqual(got["headers"]["accept"], "application/json")
        self.assertTrue(got["headers"]["user-agent"].startswith("luaflow/"))
        self.assertNotIn("expect", got["headers"])
        # A string body is sent as is, with no invented Content-Type.
        self.assertEqual(out["text"]["method"], "POST")
        self.assertEqual(out["text"]["body"], "plain text")
        self.assertNotIn("content-type", out["text"]["headers"])
        # A table body is JSON.
        self.assertEqual(out["tbl"]["headers"]["content-type"], "application/json")
        self.assertEqual(json.loads(out["tbl"]["body"]), {"items": [1, 2], "name": "x"})
        # The method is uppercased; a given Content-Type wins.
        self.assertEqual(out["put"]["method"], "PUT")
        self.assertEqual(out["put"]["body"], "<a/>")
        self.assertEqual(out["put"]["headers"]["content-type"], "application/xml")
        self.assertEqual(out["head"]["status"], 200)
        self.assertEqual(out["head"]["body"], "")
        self.assertEqual(out["del"]["method"], "DELETE")
        # Repeated response headers are joined with ", ", whatever the case of their names.
        self.assertEqual(out["multi"]["x-multi"], "one, two")
        self.assertEqual(out["multi"]["set-cookie"], "a=1, b=2")

    def test_any_status_is_a_result_and_redirects_are_followed(self):
        report = self.run_wait("statuses", {**self.base(), "other": f"http://localhost:{self.peer.port}"})
        self.assertEqual(report["status"], "succeeded")
        out = report["actions"]["a"]["output"]
        self.assertEqual(out["r404"]["status"], 404)
        self.assertEqual(out["r404"]["body"], "no such route")
        self.assertEqual(out["r500"]["status"], 500)
        self.assertEqual(out["r500"]["body"], "status 500")
        self.assertEqual(out["r500"]["headers"]["x-status"], "500")
        self.assertEqual(out["redirected"]["status"], 200)
        self.assertEqual(out["redirected"]["body"]["path"], "/echo?from=redirect")
        self.assertEqual(out["redirected"]["body"]["method"], "GET")
        self.assertIn(f"http.get: GET {self.peer.base}/loop: Number of redirects hit maximum amount",
                      out["loop_err"])
        self.assertEqual(out["away"]["headers"]["host"], f"localhost:{self.peer.port}")
        self.assertEqual(out["away"]["headers"]["x-kept"], "yes")
        self.assertNotIn("authorization", out["away"]["headers"])
        self.assertNotIn("cookie", out["away"]["headers"])
        self.assertEqual(out["after_post"]["method"], "GET")

    def test_a_slow_server_past_the_timeout_raises_naming_the_url(self):
        url = self.peer.base + "/slow?secs=20&tag=http-timeout"
        t0 = time.monotonic()
        report = self.run_wait("failing", {"url": url, "timeout": 0.4}, expect_rc=1)
        self.assertLess(time.monotonic() - t0, 10)
        a = report["actions"]["a"]
        self.assertEqual(a["status"], "failed")
        self.assertIn(f"failing.lua:4: http.get: GET {url} timed out after 400ms", a["error"])
        # The connection was closed, not left waiting.
        wait_for(lambda: "/slow?secs=20&tag=http-timeout" in self.peer.stats()["dropped"], timeout=10,
                 what="the peer to see the request dropped")

    def test_a_refused_connection_raises_naming_the_url(self):
        url = f"http://127.0.0.1:{free_port()}/x"
        a = self.run_wait("failing", {"url": url}, expect_rc=1)["actions"]["a"]
        self.assertEqual(a["status"], "failed")
        self.assertIn(f"failing.lua:4: http.get: GET {url}: Couldn't connect to server", a["error"])

    def test_the_response_size_is_capped(self):
        for route in ("/big?n=17000000", "/stream?n=17039360"):
            url = self.peer.base + route
            a = self.run_wait("failing", {"url": url}, expect_rc=1)["actions"]["a"]
            self.assertIn(f"http.get: GET {url}: the response is larger than the 16 MiB limit", a["error"])
        # Just below the cap is fine.
        a = self.run_wait("failing", {"url": self.peer.base + "/big?n=16000000"})["actions"]["a"]
        self.assertEqual(a["output"], 200)

    def test_an_https_peer_with_an_unknown_certificate_raises(self):
        tmp = tempfile.mkdtemp(prefix="luaflow-http-tls-")
        try:
            cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                            "-days", "1", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
            tls = Peer(tls=[cert, key])
            try:
                url = f"https://127.0.0.1:{tls.port}/echo"
                a = self.run_wait("failing", {"url": url}, expect_rc=1)["actions"]["a"]
                self.assertIn(f"http.get: GET {url}: ", a["error"])
                # Checked against the system's CA store, which does not know it.
                self.assertIn("SSL certificate problem: self-signed certificate", a["error"])
            finally:
                tls.stop()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_cancel_while_a_request_waits_drops_it(self):
        run_id = self.d.ctl_json("run", "waiting", "--input", json.dumps({**self.base(), "tag": "cancelled"}))["id"]
        wait_for(lambda: self.peer.stats()["inflight"] >= 1, timeout=10, what="the request to reach the peer")
        self.assertEqual(self.d.ctl_json("cancel", run_id)["status"], "cancelled")
        wait_for(lambda: "/slow?secs=30&tag=cancelled" in self.peer.stats()["dropped"], timeout=10,
                 what="the peer to see the request dropped")
        self.assertEqual(self.d.ctl_json("inspect", run_id)["actions"]["a"]["status"], "cancelled")
        self.assert_daemon_healthy()

    def test_an_action_timeout_while_a_request_waits_drops_it(self):
        t0 = time.monotonic()
        report = self.run_wait("action_timeout", self.base(), expect_rc=1)
        self.assertLess(time.monotonic() - t0, 10)
        self.assertEqual(report["actions"]["a"]["status"], "timed_out")
        wait_for(lambda: "/slow?secs=30&tag=action-timeout" in self.peer.stats()["dropped"], timeout=10,
                 what="the peer to see the request dropped")
        self.assert_daemon_healthy()

    def test_fifty_actions_wait_on_requests_at_once(self):
        t0 = time.monotonic()
        report = self.run_wait("parallel", self.base())
        elapsed = time.monotonic() - t0
        self.assertEqual(report["status"], "succeeded")
        self.assertEqual(sorted(int(a["output"]) for a in report["actions"].values()), list(range(1, 51)))
        # 50 requests of 1.5 s each: one after the other would take 75 s.
        self.assertLess(elapsed, 15)
        self.assertGreaterEqual(self.peer.stats()["max_inflight"], 50)  # all 50 waited at the peer at once

    def test_sequential_requests_reuse_one_connection(self):
        first = self.run_wait("reuse", self.base())["actions"]["a"]["output"]
        self.assertEqual(first["requests"], 21)
        self.assertLessEqual(first["after"] - first["before"], 0)  # 21 requests, no new connection
        # The next execution finds the same connection in the daemon's cache.
        second = self.run_wait("reuse", self.base())["actions"]["a"]["output"]
        self.assertEqual(second["before"], first["after"])
        self.assertEqual(second["after"], first["after"])

    def test_bad_arguments_raise_naming_the_field(self):
        out = self.run_wait("bad", self.base())["actions"]["bad"]["output"]
        self.assertIn("http.get: the url must be a string, got number", out["url_type"])
        self.assertIn("http.get: 'ftp://127.0.0.1/x': only http:// and https:// URLs are allowed", out["scheme"])
        self.assertIn("http.get: '127.0.0.1/x' is not a valid URL", out["no_scheme"])
        self.assertIn("http.request: field 'url' is required", out["missing_url"])
        self.assertIn("http.request: expected a table { method, url, headers, body, timeout }, got string",
                      out["not_table"])
        self.assertIn("http.request: unknown field 'hedaers' (expected method, url, headers, body, timeout)",
                      out["unknown"])
        self.assertIn("http.request: field 'method' is not a valid HTTP method: \"GE T\"", out["method"])
        self.assertIn("http.get: field 'headers' must be a table of name = value, got string", out["headers"])
        self.assertIn("http.get: headers['A'] must be a string or a number, got table", out["header_value"])
        self.assertIn("http.get: headers['A'] contains a line break", out["header_break"])
        self.assertIn("http.get: header name 'Bad Name' is not a valid token", out["header_name"])
        self.assertIn("http.get: header names must be strings, got number", out["header_key"])
        self.assertIn("http.post: the body must be a string or a table (sent as JSON), got number", out["body"])
        self.assertIn("http.post: body.f: cannot encode a function", out["body_json"])
        self.assertIn("http.get: field 'timeout' must be seconds > 0 or a duration like \"30s\", got string \"soon\"",
                      out["timeout"])
        self.assertIn("http.get: field 'timeout' must be seconds > 0", out["timeout_zero"])
        self.assertIn("http.get: unknown field 'url' (expected headers, timeout)", out["get_opts"])
        self.assertIn("http.get: expected (url [, opts]), got 3 arguments", out["too_many"])
        # Raised at the caller's line.
        self.assertIn("bad.lua:27: http.get: the url must be a string", out["position"])

    def test_calling_at_load_time_is_refused(self):
        entry = next(w for w in self.d.ctl_json("list") if w["id"] == "at_load")
        self.assertEqual(entry["status"], "error")
        self.assertIn("at_load.lua:2: http.get: only allowed while an action runs", entry["error"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
