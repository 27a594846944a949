"""The HTTP API (SPEC 7, issue 17), driven with python's http.client: the bearer token, every endpoint of
this slice with the same documents as `luaflowctl --json`, `?wait=`, the body limit (413, and the next
request answered), wrong methods and paths, and a clean stop with a keep-alive connection open."""
import hashlib
import hmac
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import LUAFLOWD, Daemon, wait_for  # noqa: E402

TOKEN = "s3cret-token-for-tests"

THREE = """
return workflow {
  actions = {
    a = { run = function(ctx) return { n = ctx.input.n or 1 } end },
    b = { needs = { "a" }, run = function(ctx) return ctx.outputs.a.n * 2 end },
  },
}
"""
SLOW = """
return workflow { actions = { nap = { run = function() sleep(3); return true end } } }
"""
HOOK_OPEN = """
return workflow {
  triggers = { manual = false, webhook = {} },
  actions = { got = { run = function(ctx) return ctx.input end } },
}
"""
HOOK_SIGNED = """
return workflow {
  triggers = { webhook = { secret = "k3y" } },
  actions = { got = { run = function(ctx) return ctx.input end } },
}
"""
HOOK_FILE = """
return workflow {
  triggers = { webhook = { secret_file = "secrets/hook.key" } },
  actions = { got = { run = function(ctx) return ctx.input end } },
}
"""
HOOK_RESPOND = """
return workflow {
  triggers = { webhook = { respond = "reply" } },
  actions = {
    parse = { run = function(ctx) if ctx.input.fail then error("bad order") end; return ctx.input.qty * 2 end },
    reply = { needs = { "parse" }, run = function(ctx) return { accepted = true, qty = ctx.outputs.parse } end },
    after_reply = { needs = { "reply" }, run = function() return "logged" end },
  },
}
"""
TALK = """
return workflow { actions = { talk = { run = function()
  for i = 1, 3 do log.info("line %d", i); sleep(0.3) end
  return true
end } } }
"""
FAILS = """
return workflow { actions = { boom = { run = function() error("no luck") end } } }
"""
NO_MANUAL = """
return workflow { triggers = { manual = false }, actions = { a = { run = function() return 1 end } } }
"""


def Api(port):
    return harness.HttpApi(port, TOKEN)


class ApiDaemon(unittest.TestCase):
    """A daemon with the HTTP API for a whole test class."""

    @classmethod
    def setUpClass(cls):
        cls.d = Daemon({"three.lua": THREE, "slow.lua": SLOW, "no-manual.lua": NO_MANUAL, "hook-open.lua": HOOK_OPEN,
                        "hook-signed.lua": HOOK_SIGNED, "hook-file.lua": HOOK_FILE,
                        "hook-respond.lua": HOOK_RESPOND, "fails.lua": FAILS, "talk.lua": TALK})
        os.makedirs(os.path.join(cls.d.workflows, "secrets"))
        with open(os.path.join(cls.d.workflows, "secrets", "hook.key"), "w") as f:
            f.write("from-a-file\n")
        cls.api = Api(cls.d.start_with_http_api(TOKEN))

    @classmethod
    def tearDownClass(cls):
        harness.finish(cls.d)


class HttpApiTest(ApiDaemon):
    def test_healthz_is_open_and_the_rest_needs_the_token(self):
        self.assertEqual(self.api.request("GET", "/healthz", token=None), (200, {"status": "ok"}))
        for token in (None, "wrong", TOKEN + "x", ""):
            status, doc = self.api.request("GET", "/v1/workflows", token=token)
            self.assertEqual(status, 401, token)
            self.assertIn("Authorization: Bearer", doc["error"])
        status, _ = self.api.request("GET", "/v1/workflows", token=None, headers={"Authorization": "Basic eDp5"})
        self.assertEqual(status, 401)

    def test_workflows_are_what_luaflowctl_says(self):
        self.assertEqual(self.api.request("GET", "/v1/workflows"), (200, self.d.ctl_json("list")))
        self.assertEqual(self.api.request("GET", "/v1/workflows/three"), (200, self.d.ctl_json("show", "three")))
        status, doc = self.api.request("GET", "/v1/workflows/nope")
        self.assertEqual(status, 404)
        self.assertIn("nope", doc["error"])

    def test_a_run_is_created_inspected_and_listed(self):
        status, doc = self.api.request("POST", "/v1/workflows/three/executions", body=json.dumps({"n": 4}))
        self.assertEqual(status, 201)
        eid = doc["id"]
        wait_for(lambda: self.d.ctl_json("inspect", eid)["status"] == "succeeded", what="the run to end")
        status, report = self.api.request("GET", f"/v1/executions/{eid}")
        self.assertEqual(status, 200)
        self.assertEqual(report, self.d.ctl_json("inspect", eid))
        self.assertEqual(report["trigger"], {"type": "api"})
        self.assertEqual(report["actions"]["b"]["output"], 8)
        status, listed = self.api.request("GET", "/v1/executions?workflow=three&limit=1")
        self.assertEqual(status, 200)
        self.assertEqual(listed, self.d.ctl_json("executions", "--workflow", "three", "--limit", "1"))
        self.assertEqual(self.api.request("GET", "/v1/executions?limit=abc")[0], 400)
        self.assertEqual(self.api.request("GET", "/v1/executions/ffffffffffffffff")[0], 404)

    def test_wait_answers_with_the_report_or_202(self):
        status, report = self.api.request("POST", "/v1/workflows/three/executions?wait=10s",
                                          body=json.dumps({"n": 21}))
        self.assertEqual(status, 200)
        self.assertEqual(report["status"], "succeeded")
        self.assertEqual(report["actions"]["b"]["output"], 42)
        t = time.monotonic()
        status, doc = self.api.request("POST", "/v1/workflows/slow/executions?wait=200ms")
        self.assertEqual(status, 202)
        self.assertLess(time.monotonic() - t, 2.5)
        self.assertEqual(self.d.ctl_json("inspect", doc["id"])["status"], "running")
        # Cancelled over the API.
        status, doc = self.api.request("POST", f"/v1/executions/{doc['id']}/cancel")
        self.assertEqual((status, doc["status"]), (200, "cancelled"))
        self.assertEqual(self.api.request("POST", "/v1/workflows/three/executions?wait=soon")[0], 400)

    def test_bad_requests_name_what_is_wrong(self):
        status, doc = self.api.request("POST", "/v1/workflows/three/executions", body="[1, 2]")
        self.assertEqual(status, 400)
        self.assertIn("JSON object", doc["error"])
        status, doc = self.api.request("POST", "/v1/workflows/three/executions", body="{not json")
        self.assertEqual(status, 400)
        self.assertEqual(self.api.request("POST", "/v1/workflows/nope/executions")[0], 404)
        status, doc = self.api.request("POST", "/v1/workflows/no-manual/executions")
        self.assertEqual(status, 409)
        self.assertIn("manual", doc["error"])
        status, doc = self.api.request("GET", "/v1/nothing-here")
        self.assertEqual(status, 404)
        status, doc = self.api.request("DELETE", "/v1/executions")
        self.assertEqual(status, 405)
        self.assertIn("GET", doc["error"])

    def test_a_body_over_the_limit_is_413_and_the_next_request_is_answered(self):
        body = b"x" * (10 << 20)
        s = socket.create_connection(("127.0.0.1", self.api.port), timeout=10)
        s.sendall(b"POST /v1/workflows/three/executions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                  TOKEN.encode() + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n")
        head = s.recv(4096)
        s.close()
        self.assertTrue(head.startswith(b"HTTP/1.1 413"), head[:80])
        self.assertEqual(self.api.request("GET", "/healthz", token=None)[0], 200)


def sign(secret, body):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookTest(ApiDaemon):
    def hook(self, path, body=b"", signature=None):
        headers = {"X-Luaflow-Signature": signature} if signature else {}
        return self.api.request("POST", path, body=body, token=None, headers=headers)

    def input_of(self, eid):
        wait_for(lambda: self.d.ctl_json("inspect", eid)["status"] == "succeeded", what="the hook's run")
        doc = self.d.ctl_json("inspect", eid)
        self.assertEqual(doc["trigger"], {"type": "webhook"})
        return doc["input"]

    def test_an_open_hook_takes_json_or_any_body_without_the_token(self):
        status, doc = self.hook("/hooks/hook-open", json.dumps({"order": 7}).encode())
        self.assertEqual(status, 202)
        self.assertEqual(self.input_of(doc["id"]), {"order": 7})
        status, doc = self.hook("/hooks/hook-open", b"plain text, not JSON")
        self.assertEqual(status, 202)
        self.assertEqual(self.input_of(doc["id"]), {"body": "plain text, not JSON"})
        status, doc = self.hook("/hooks/hook-open", b"[1, 2]")
        self.assertEqual(self.input_of(doc["id"]), {"body": "[1, 2]"})

    def test_a_secret_needs_the_body_signed(self):
        body = json.dumps({"event": "push"}).encode()
        status, doc = self.hook("/hooks/hook-signed", body)
        self.assertEqual(status, 401)
        self.assertIn("X-Luaflow-Signature", doc["error"])
        for bad in (sign("other", body), sign("k3y", body + b" "), "sha256=zz", sign("k3y", body)[:-2], "md5=00"):
            self.assertEqual(self.hook("/hooks/hook-signed", body, bad)[0], 401, bad)
        status, doc = self.hook("/hooks/hook-signed", body, sign("k3y", body))
        self.assertEqual(status, 202)
        self.assertEqual(self.input_of(doc["id"]), {"event": "push"})
        status, doc = self.hook("/hooks/hook-signed", body, sign("k3y", body).upper().replace("SHA256=", "sha256="))
        self.assertEqual(status, 202)  # hex digits in either case
        status, doc = self.hook("/hooks/hook-file", body, sign("from-a-file", body))
        self.assertEqual(status, 202)

    def test_respond_answers_with_the_named_action_output(self):
        status, doc = self.hook("/hooks/hook-respond?wait=10s", json.dumps({"qty": 5}).encode())
        self.assertEqual((status, doc), (200, {"accepted": True, "qty": 10}))
        status, doc = self.hook("/hooks/hook-respond?wait=10s", json.dumps({"qty": 5, "fail": True}).encode())
        self.assertEqual(status, 500)
        self.assertEqual(doc["status"], "failed")
        self.assertIn("reply", doc["error"])
        # Without respond, ?wait= answers with the report.
        status, doc = self.hook("/hooks/hook-open?wait=10s", b"{}")
        self.assertEqual((status, doc["status"], doc["trigger"]), (200, "succeeded", {"type": "webhook"}))

    def test_a_body_that_is_not_utf8_is_415_and_the_daemon_stays(self):
        # Found by fuzz_http_request: the bytes went into the input as `body`, and storing it ended the daemon.
        status, doc = self.hook("/hooks/hook-open", b'{"a\xde\xc81}')
        self.assertEqual(status, 415)
        self.assertIn("byte 0xDE at offset 3", doc["error"])
        status, doc = self.hook("/hooks/hook-open?wait=10s", "plain text, caf\u00e9".encode())
        self.assertEqual(status, 200)
        self.assertEqual(doc["input"], {"body": "plain text, caf\u00e9"})
        self.assertEqual(self.api.request("GET", "/healthz", token=None)[0], 200)

    def test_an_unreadable_secret_file_is_500_naming_it(self):
        key = os.path.join(self.d.workflows, "secrets", "hook.key")
        os.rename(key, key + ".away")
        try:
            status, doc = self.hook("/hooks/hook-file", b"{}", sign("from-a-file", b"{}"))
        finally:
            os.rename(key + ".away", key)
        self.assertEqual(status, 500)
        self.assertIn("secrets/hook.key", doc["error"])

    def test_hooks_that_are_not_there(self):
        status, doc = self.hook("/hooks/three")
        self.assertEqual(status, 404)
        self.assertIn("no webhook trigger", doc["error"])
        self.assertEqual(self.hook("/hooks/nope")[0], 404)
        self.assertEqual(self.api.request("GET", "/hooks/hook-open", token=None)[0], 405)

    def test_respond_must_name_an_action(self):
        path = os.path.join(self.d.dir, "bad-respond.lua")
        with open(path, "w") as f:
            f.write(HOOK_RESPOND.replace('respond = "reply"', 'respond = "nope"'))
        rc, out, err = self.d.ctl("validate", path)
        self.assertEqual(rc, 1)
        self.assertIn("bad-respond.lua:3: triggers.webhook.respond: no action 'nope'", out + err)


class WorkflowFilesTest(ApiDaemon):
    def put(self, wid, text):
        return self.api.request("PUT", f"/v1/workflows/{wid}", body=text.encode())

    def test_put_checks_writes_and_loads_then_delete_removes(self):
        path = os.path.join(self.d.workflows, "made.lua")
        status, doc = self.put("made", THREE)
        self.assertEqual(status, 201)
        self.assertEqual(doc, self.d.ctl_json("show", "made"))
        with open(path) as f:
            self.assertEqual(f.read(), THREE)
        self.assertEqual(self.api.request("POST", "/v1/workflows/made/executions?wait=10s")[1]["status"], "succeeded")
        # Replaced: 200, and the new version is the one that runs.
        status, doc = self.put("made", THREE.replace("* 2", "* 3"))
        self.assertEqual(status, 200)
        report = self.api.request("POST", "/v1/workflows/made/executions?wait=10s", body=b'{"n": 2}')[1]
        self.assertEqual(report["actions"]["b"]["output"], 6)
        # A broken text: 422 with every error, in order, and the file as it was.
        broken = THREE.replace('needs = { "a" }', 'needs = { "zz" }').replace("return workflow {", "return workflow {\n  colour = 1,")
        status, doc = self.put("made", broken)
        self.assertEqual(status, 422)
        self.assertEqual([e["line"] for e in doc["errors"]], sorted(e["line"] for e in doc["errors"]))
        self.assertEqual(len(doc["errors"]), 2, doc)
        self.assertIn("colour", doc["errors"][0]["message"])
        self.assertIn("zz", doc["errors"][1]["message"])
        self.assertEqual(doc["error"].split(":")[0], path)
        with open(path) as f:
            self.assertEqual(f.read(), THREE.replace("* 2", "* 3"))
        # No temporary file is left behind.
        self.assertEqual([n for n in os.listdir(self.d.workflows) if n.startswith(".")], [])
        status, doc = self.put("../escape", THREE)
        self.assertIn(status, (400, 404))
        self.assertEqual(self.put(".hidden", THREE)[0], 400)
        # Deleted: 204, gone from list, its past executions stay.
        status, _ = self.api.request("DELETE", "/v1/workflows/made")
        self.assertEqual(status, 204)
        self.assertFalse(os.path.exists(path))
        self.assertNotIn("made", [w["id"] for w in self.d.ctl_json("list")])
        self.assertEqual(len(self.d.ctl_json("executions", "--workflow", "made")), 2)
        self.assertEqual(self.api.request("DELETE", "/v1/workflows/made")[0], 404)


class LogsTest(ApiDaemon):
    def open(self, path):
        c = http.client.HTTPConnection("127.0.0.1", self.api.port, timeout=15)
        c.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}"})
        return c, c.getresponse()

    def test_follow_streams_events_until_the_end_then_the_text(self):
        eid = self.api.request("POST", "/v1/workflows/talk/executions")[1]["id"]
        c, r = self.open(f"/v1/executions/{eid}/logs?follow=1")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.getheader("Content-Type"), "text/event-stream")
        events, data, kind = [], [], None
        t0 = time.monotonic()
        first_at = None
        while True:
            line = r.fp.readline().decode()
            self.assertTrue(line, "the stream ended without an end event")
            line = line.rstrip("\n")
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data.append(json.loads(line[6:]))
            elif line == "":
                events.append((kind or "message", data[-1]))
                if first_at is None and kind is None and "line 1" in data[-1].get("line", ""):
                    first_at = time.monotonic() - t0
                if kind == "end":
                    break
                kind = None
        c.close()
        lines = [d["line"] for k, d in events if k == "message"]
        self.assertEqual([l for l in lines if l.startswith("line ")], ["line 1", "line 2", "line 3"])
        self.assertEqual(events[-1][0], "end")
        # The first line came as it was committed, not with the end (0.9 s of sleeps later).
        self.assertLess(first_at, 0.6)
        self.assertEqual(self.d.ctl_json("inspect", eid)["status"], "succeeded")
        status_text = self.open(f"/v1/executions/{eid}/logs")
        body = status_text[1].read().decode()
        status_text[0].close()
        self.assertEqual(status_text[1].getheader("Content-Type"), "text/plain; charset=utf-8")
        self.assertRegex(body, r"\n?\S+  talk#1  log  line 2\n")
        self.assertEqual(self.api.request("GET", "/v1/executions/ffffffffffffffff/logs")[0], 404)
        self.assertEqual(self.api.request("GET", f"/v1/executions/{eid}/logs?action=nope")[0], 404)

    def test_a_follower_that_goes_away_costs_nothing(self):
        eid = self.api.request("POST", "/v1/workflows/talk/executions")[1]["id"]
        for _ in range(5):
            c, r = self.open(f"/v1/executions/{eid}/logs?follow=1")
            r.fp.readline()
            c.close()
        self.assertEqual(self.api.request("GET", "/healthz", token=None)[0], 200)
        wait_for(lambda: self.d.ctl_json("inspect", eid)["status"] == "succeeded", what="the run to end")


class MetricsTest(ApiDaemon):
    def metrics(self):
        try:
            from prometheus_client.parser import text_string_to_metric_families
        except ImportError:
            harness.missing_peer("python3-prometheus-client (Prometheus's text parser) is not installed")
        c = http.client.HTTPConnection("127.0.0.1", self.api.port, timeout=15)
        c.request("GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        self.assertTrue(r.getheader("Content-Type").startswith("text/plain; version=0.0.4"))
        text = r.read().decode()
        c.close()
        samples = {}
        for family in text_string_to_metric_families(text):
            self.assertTrue(family.documentation, family.name)
            for s in family.samples:
                samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return text, samples

    def test_metrics_parse_and_count_what_happened(self):
        for n in range(3):
            self.d.ctl_json("run", "three", "--wait")
        self.api.request("POST", "/v1/workflows/three/executions?wait=10s")
        self.d.ctl_json("run", "fails", "--wait", expect_rc=1)
        text, m = self.metrics()
        self.assertIn("# TYPE luaflow_executions_total counter", text)
        self.assertEqual(m[("luaflow_executions_total", (("status", "succeeded"), ("workflow", "three")))], 4)
        self.assertEqual(m[("luaflow_executions_total", (("status", "failed"), ("workflow", "fails")))], 1)
        self.assertEqual(m[("luaflow_actions_total", (("status", "succeeded"), ("workflow", "three")))], 8)
        self.assertEqual(m[("luaflow_actions_total", (("status", "failed"), ("workflow", "fails")))], 1)
        self.assertEqual(m[("luaflow_execution_duration_seconds_count", (("workflow", "three"),))], 4)
        self.assertEqual(m[("luaflow_execution_duration_seconds_bucket", (("le", "+Inf"), ("workflow", "three")))], 4)
        self.assertEqual(m[("luaflow_executions_running", (("workflow", "three"),))], 0)
        self.assertEqual(m[("luaflow_actions_running", ())], 0)
        self.assertGreater(m[("luaflow_store_bytes", (("file", "db"),))], 0)
        self.assertEqual(m[("luaflow_schedule_lateness_seconds_count", ())], 0)
        self.assertEqual(m[("luaflow_workflows", (("state", "error"),))], 0)
        self.assertGreater(m[("luaflow_store_commits_total", ())], 0)
        self.assertGreater(m[("luaflow_lua_memory_bytes", (("workflow", "three"),))], 0)
        # A running one shows.
        eid = self.api.request("POST", "/v1/workflows/slow/executions")[1]["id"]
        wait_for(lambda: self.metrics()[1][("luaflow_executions_running", (("workflow", "slow"),))] == 1,
                 what="the running gauge")
        self.api.request("POST", f"/v1/executions/{eid}/cancel")
        self.assertEqual(self.api.request("GET", "/metrics", token=None)[0], 401)


class HttpApiLifeTest(unittest.TestCase):
    def test_a_keep_alive_connection_does_not_hold_the_stop(self):
        d = Daemon({"three.lua": THREE})
        try:
            port = d.start_with_http_api(TOKEN)
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/healthz")
            self.assertEqual(c.getresponse().read(), b'{"status":"ok"}')  # the connection stays open
            t = time.monotonic()
            self.assertEqual(d.stop(), 0)
            self.assertLess(time.monotonic() - t, 5)
            c.close()
        finally:
            d.cleanup()

    def test_sighup_reads_the_token_file_again(self):
        d = Daemon({"three.lua": THREE})
        try:
            api = Api(d.start_with_http_api(TOKEN))
            token_file = d.token_file
            self.assertEqual(api.request("GET", "/v1/workflows")[0], 200)
            with open(token_file, "w") as f:
                f.write("rotated-token\n")
            d.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: api.request("GET", "/v1/workflows", token="rotated-token")[0] == 200,
                     what="the new token to be taken")
            self.assertEqual(api.request("GET", "/v1/workflows")[0], 401)
            # A token file that cannot be read at a reload leaves the token in force, and says why.
            os.unlink(token_file)
            self.assertEqual(d.ctl("reload")[0], 0)
            wait_for(lambda: "the HTTP API keeps its token" in d.log_text(), what="the reload's error")
            self.assertIn(token_file, d.log_text())
            self.assertEqual(api.request("GET", "/v1/workflows", token="rotated-token")[0], 200)
        finally:
            harness.finish(d)

    def test_max_body_timeout_and_max_connections_are_the_config_s(self):
        d = Daemon({"three.lua": THREE})
        try:
            api = Api(d.start_with_http_api(TOKEN, 'max_body = "2K", timeout = "1s", max_connections = 4'))
            self.assertEqual(api.request("POST", "/v1/workflows/three/executions", body=b"{}" + b" " * 2000)[0], 201)
            c = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
            c.request("POST", "/v1/workflows/three/executions", body=b"{}" + b" " * 3000,
                      headers={"Authorization": f"Bearer {TOKEN}"})
            self.assertEqual(c.getresponse().status, 413)  # libh2o's own answer (text), before the body is read
            c.close()
            # An idle keep-alive connection is closed after the timeout.
            idle = socket.create_connection(("127.0.0.1", api.port), timeout=10)
            t = time.monotonic()
            self.assertEqual(idle.recv(1), b"")
            self.assertGreater(time.monotonic() - t, 0.7)
            self.assertLess(time.monotonic() - t, 5)
            idle.close()
            # Four connections at most: a fifth is closed at once, and once one goes a new one is served.
            held = []

            def four_held():
                # Each accepted and counted: it has been answered. A connection the client has just closed
                # may still count until the loop has read its end, so a refused one is tried again.
                while len(held) < 4:
                    s = socket.create_connection(("127.0.0.1", api.port), timeout=10)
                    try:
                        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                        answered = s.recv(4096).startswith(b"HTTP/1.1 200")
                    except ConnectionError:
                        answered = False
                    if not answered:
                        s.close()
                        return False
                    held.append(s)
                return True

            wait_for(four_held, what="four connections held")
            extra = socket.create_connection(("127.0.0.1", api.port), timeout=10)
            t = time.monotonic()
            self.assertEqual(extra.recv(1), b"")
            self.assertLess(time.monotonic() - t, 0.5)  # at once, not at the timeout
            extra.close()
            held.pop().close()
            wait_for(four_held, what="a new connection served in its place")
            for s in held:
                s.close()
        finally:
            harness.finish(d)

    def test_listen_without_a_token_file_does_not_start(self):
        d = Daemon({"three.lua": THREE}, config='http = { listen = "127.0.0.1:0" }\n')
        try:
            p = subprocess.run([LUAFLOWD, "-c", d.config, "-w", d.workflows, "-s", d.state, "--socket", d.socket],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 1)
            self.assertIn("http.token_file", p.stderr)
        finally:
            d.cleanup()


if __name__ == "__main__":
    harness.main()
