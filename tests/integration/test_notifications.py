"""Notifications (SPEC 8, issue 18) against real receivers on 127.0.0.1: webhooks in the json, slack,
discord and ntfy shapes, e-mail through aiosmtpd (plain, and STARTTLS with AUTH), each event, notify()
from Lua, a receiver down and then up, kill -9 between a send and its record, `luaflowctl notify test`,
and `luaflowctl test`, which records and never sends."""
import http.client
import json
import os
import re
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import LUAFLOWCTL, Daemon, main, missing_peer, wait_for  # noqa: E402
from notify_peers import SmtpPeer, WebhookPeer  # noqa: E402

FAILING = """
return workflow {
  notify = { failure = { "j" }, success = { "j" } },
  actions = {
    fetch = { shell = "echo 'curl: (6) Could not resolve host' >&2; exit 3" },
  },
}
"""


def sent(d, exec_id, n, timeout=20):
    """The inspect document once `n` of its notifications are sent."""
    doc = {}

    def done():
        nonlocal doc
        doc = d.ctl_json("inspect", exec_id)
        return sum(x["status"] == "sent" for x in doc["notifications"]) >= n
    wait_for(done, timeout=timeout, what=f"{n} notifications sent")
    return doc


class WebhookTest(unittest.TestCase):
    def setUp(self):
        self.d = Daemon()
        self.peer = WebhookPeer(self.d.dir)

    def tearDown(self):
        self.peer.stop()
        rc = self.d.stop()
        self.assertEqual(rc, 0, self.d.log_text()[-3000:])
        self.d.cleanup()

    def config(self, notify="", extra=""):
        hooks = ", ".join(f'{f[0]} = {{ webhook = {{ url = "{self.peer.url("/" + f)}", format = "{f}" }} }}'
                          for f in ("json", "slack", "discord", "ntfy"))
        with open(self.d.config, "w") as f:
            f.write(f'shutdown_grace = "2s"\nnotifiers = {{ {hooks} }}\n{notify}\n{extra}\n')

    def test_a_failure_goes_to_each_format_once(self):
        # The global rule and the workflow's both name j: it is sent once.
        self.config('notify = { failure = { "j", "s", "d", "n" } }')
        self.d.write("nightly.lua", FAILING)
        self.d.start()
        report = self.d.ctl_json("run", "nightly", "--wait", expect_rc=1)
        doc = sent(self.d, report["id"], 4)
        self.assertEqual(sorted(x["notifier"] for x in doc["notifications"]), ["d", "j", "n", "s"])
        for x in doc["notifications"]:
            self.assertEqual((x["event"], x["attempts"], x["error"]), ("failure", 1, None))
        reqs = {r["path"]: r for r in self.peer.requests()}
        self.assertEqual(sorted(reqs), ["/discord", "/json", "/ntfy", "/slack"])
        ids = {r["headers"]["X-Luaflow-Notification-Id"] for r in reqs.values()}
        self.assertEqual(ids, {x["id"] for x in doc["notifications"]})
        body = json.loads(reqs["/json"]["body"])
        self.assertEqual((body["event"], body["workflow"], body["execution"], body["status"]),
                         ("failure", "nightly", report["id"], "failed"))
        self.assertIn("Could not resolve host", body["error"])  # the stderr line of issue 7
        self.assertIn(f"luaflowctl logs {report['id']}", body["text"])
        self.assertIsInstance(body["duration_ms"], int)
        self.assertIn("Could not resolve host", json.loads(reqs["/slack"]["body"])["text"])
        discord = json.loads(reqs["/discord"]["body"])
        self.assertEqual(discord["allowed_mentions"], {"parse": []})
        self.assertIn("nightly failed", discord["content"])
        self.assertIn("nightly failed", reqs["/ntfy"]["headers"]["Title"])
        self.assertEqual(reqs["/ntfy"]["headers"]["Priority"], "high")
        self.assertIn("luaflowctl logs", reqs["/ntfy"]["body"])

    def test_each_event(self):
        self.config(extra='sandbox = { memory = "16M" }')
        rules = ('notify = { success = {"j"}, failure = {"j"}, timeout = {"j"}, cancelled = {"j"}, '
                 'retry = {"j"}, resource = {"j"}, skipped = {"j"}, late = {"j"} },')
        self.d.write("ok.lua", f'return workflow {{ {rules} actions = {{ a = {{ run = function() return 1 end }} }} }}')
        self.d.write("slow.lua", f'return workflow {{ {rules} timeout = "300ms", '
                                 'actions = { a = { shell = "sleep 5" } } }')
        self.d.write("held.lua", f'return workflow {{ {rules} actions = {{ a = {{ shell = "sleep 30" }} }} }}')
        self.d.write("hog.lua", f'''return workflow {{ {rules} actions = {{ a = {{ retries = 1, retry_delay = "10ms",
            run = function() local t = {{}} for i = 1, 1e7 do t[i] = string.rep("x", 64) .. i end end }} }} }}''')
        self.d.write("tick.lua", f'''return workflow {{ {rules} schedule = "FREQ=SECONDLY", overlap = "skip",
            actions = {{ a = {{ shell = "sleep 2.5" }} }} }}''')
        self.d.write("queue.lua", f'''return workflow {{ {rules} schedule = "FREQ=SECONDLY",
            actions = {{ a = {{ shell = "sleep 1.5" }} }} }}''')
        self.d.write("told.lua", '''return workflow { actions = { a = { run = function()
            notify("j", { subject = "Überwachung: 3 Dateien", body = "done\\nall good" }) return 1 end } } }''')
        self.d.start()
        self.d.ctl_json("run", "ok", "--wait")
        self.d.ctl_json("run", "slow", "--wait", expect_rc=1)
        held = self.d.ctl_json("run", "held")["id"]
        wait_for(lambda: self.d.ctl_json("inspect", held)["status"] == "running")
        self.d.ctl("cancel", held)
        self.d.ctl_json("run", "hog", "--wait", expect_rc=1)
        told = self.d.ctl_json("run", "told", "--wait")
        wanted = {("ok", "success"), ("slow", "timeout"), ("held", "cancelled"), ("hog", "retry"),
                  ("hog", "resource"), ("hog", "failure"), ("tick", "skipped"), ("queue", "late"),
                  ("told", "notify")}

        def got():
            return {(json.loads(r["body"])["workflow"], json.loads(r["body"])["event"]) for r in self.peer.requests()}
        wait_for(lambda: wanted <= got(), timeout=20, what=f"every event: {wanted - got()} missing")
        self.d.ctl("disable", "tick")
        self.d.ctl("disable", "queue")
        note = [json.loads(r["body"]) for r in self.peer.requests() if json.loads(r["body"])["event"] == "notify"][0]
        self.assertEqual((note["subject"], note["body"], note["execution"]),
                         ("Überwachung: 3 Dateien", "done\nall good", told["id"]))
        self.assertEqual([x["event"] for x in sent(self.d, told["id"], 1)["notifications"]], ["notify"])

    def test_notify_to_an_unknown_notifier_fails_the_action_naming_it(self):
        self.config()
        self.d.write("w.lua", 'return workflow { actions = { a = { run = function() notify("ops", '
                              '{ body = "x" }) end } } }')
        self.d.start()
        report = self.d.ctl_json("run", "w", "--wait", expect_rc=1)
        self.assertIn("notify: no notifier 'ops' in the config (it has d, j, n, s)", report["actions"]["a"]["error"])

    def test_a_rule_naming_an_unknown_notifier_is_a_load_error(self):
        self.config()
        path = self.d.write("w.lua", 'return workflow {\n  notify = { failure = { "opz" } },\n'
                                     '  actions = { a = { run = function() end } } }')
        self.d.start()
        [w] = self.d.ctl_json("list")
        self.assertEqual(w["status"], "error")
        self.assertIn("w.lua:2: notify.failure: unknown notifier 'opz' (the config has d, j, n, s)", w["error"])
        # validate reads no config yet (SPEC 6's -c FILE is issue 20's): it cannot tell, and does not.
        out = subprocess.run([LUAFLOWCTL, "--json", "validate", path], capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stdout)

    def test_a_receiver_down_for_a_while_gets_it_when_it_is_back(self):
        self.config()
        self.peer.stop()  # nothing listens on its port: each attempt is refused
        self.d.write("nightly.lua", FAILING)
        self.d.start()
        exec_id = self.d.ctl_json("run", "nightly", "--wait", expect_rc=1)["id"]
        # A refused attempt at once; the next come 1, 2, 4, 8, 16 s after the one before.
        wait_for(lambda: self.d.ctl_json("inspect", exec_id)["notifications"][0]["attempts"] >= 2, timeout=15)
        [n] = self.d.ctl_json("inspect", exec_id)["notifications"]
        self.assertEqual(n["status"], "pending")
        self.assertIn("Couldn't connect to server", n["error"])
        self.peer.start()
        # Up to 16 s to the next attempt on a loaded machine (its receiver slow to come up).
        [n] = sent(self.d, exec_id, 1, timeout=60)["notifications"]
        self.assertGreaterEqual(n["attempts"], 3)
        self.assertIsNone(n["error"])
        self.assertEqual(len(self.peer.requests()), 1)  # the refused ones never reached it

    def test_kill_9_between_send_and_record_sends_the_same_message_again(self):
        self.config()
        self.peer.set_mode("hold-then-ok")  # receives it, and answers only once told
        self.d.write("nightly.lua", FAILING)
        self.d.start()
        exec_id = self.d.ctl_json("run", "nightly", "--wait", expect_rc=1)["id"]
        self.peer.wait_for(1)
        self.d.kill9()
        self.peer.set_mode("ok")
        self.d.start()
        first, again = self.peer.wait_for(2)[:2]
        self.assertEqual(first["headers"]["X-Luaflow-Notification-Id"], again["headers"]["X-Luaflow-Notification-Id"])
        self.assertEqual(first["body"], again["body"])
        [n] = sent(self.d, exec_id, 1)["notifications"]
        self.assertEqual(n["id"], again["headers"]["X-Luaflow-Notification-Id"])

    def test_notify_test_reports_the_outcome(self):
        with open(self.d.config, "w") as f:
            f.write(f'shutdown_grace = "2s"\nnotifiers = {{ hook = {{ webhook = {{ url = "{self.peer.url()}" }} }},\n'
                    '  dead = { webhook = { url = "http://127.0.0.1:9/x" } } }\n')
        self.d.start()
        rc, out, err = self.d.ctl("notify", "test", "hook")
        self.assertEqual(rc, 0, err)
        [r] = self.peer.wait_for(1)
        self.assertIn("test notification", json.loads(r["body"])["subject"])
        rc, out, err = self.d.ctl("notify", "test", "dead")
        self.assertEqual(rc, 1)
        self.assertIn("notifier dead:", err)
        self.assertIn("127.0.0.1 port 9", err)  # curl's own words
        self.peer.set_mode("status:500")
        rc, out, err = self.d.ctl("notify", "test", "hook")
        self.assertEqual(rc, 1)
        self.assertIn("HTTP 500: status 500", err)
        rc, out, err = self.d.ctl("notify", "test", "nope")
        self.assertEqual(rc, 1)
        self.assertIn("no notifier 'nope' in the config (it has dead, hook)", err)

    def test_metrics_count_them_by_notifier_and_status(self):
        try:
            from prometheus_client.parser import text_string_to_metric_families
        except ImportError:
            missing_peer("python3-prometheus-client (Prometheus's text parser) is not installed")
        with open(os.path.join(self.d.dir, "token"), "w") as f:
            f.write("t0ken\n")
        with open(self.d.config, "w") as f:
            f.write(f'shutdown_grace = "2s"\nhttp = {{ listen = "127.0.0.1:0", token_file = "{self.d.dir}/token" }}\n'
                    f'notifiers = {{ j = {{ webhook = {{ url = "{self.peer.url()}" }} }},\n'
                    '  down = { webhook = { url = "http://127.0.0.1:9/x" } } }\n'
                    'notify = { failure = { "j", "down" } }\n')
        self.d.write("w.lua", 'return workflow { actions = { a = { shell = "exit 1" } } }')
        self.d.start()
        port = int(re.search(r"HTTP API on 127\.0\.0\.1:0 \(port (\d+)\)", self.d.log_text()).group(1))
        exec_id = self.d.ctl_json("run", "w", "--wait", expect_rc=1)["id"]
        sent(self.d, exec_id, 1)

        def samples():
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
            c.request("GET", "/metrics", headers={"Authorization": "Bearer t0ken"})
            text = c.getresponse().read().decode()
            c.close()
            return {(s.name, tuple(sorted(s.labels.items()))): s.value
                    for family in text_string_to_metric_families(text) for s in family.samples}
        wait_for(lambda: samples().get(("luaflow_notification_attempts_failed_total", (("notifier", "down"),)), 0) >= 1)
        m = samples()
        self.assertEqual(m[("luaflow_notifications_total", (("notifier", "j"), ("status", "sent")))], 1)
        self.assertEqual(m[("luaflow_notifications_total", (("notifier", "down"), ("status", "sent")))], 0)
        self.assertEqual(m[("luaflow_notifications_pending", (("notifier", "down"),))], 1)
        self.assertEqual(m[("luaflow_notifications_pending", (("notifier", "j"),))], 0)

    def test_luaflowctl_test_records_and_never_sends(self):
        self.config()
        path = self.d.write("nightly.lua", FAILING)
        out = subprocess.run([LUAFLOWCTL, "--json", "test", path], capture_output=True, text=True)
        self.assertEqual(out.returncode, 1, out.stderr)
        [n] = json.loads(out.stdout)["report"]["notifications"]
        self.assertEqual((n["notifier"], n["event"], n["status"], n["attempts"]), ("j", "failure", "recorded", 0))
        time.sleep(0.5)
        self.assertEqual(self.peer.requests(), [])
        self.d.start()  # for tearDown


class EmailTest(unittest.TestCase):
    def tearDown(self):
        self.smtp.stop()
        rc = self.d.stop()
        self.assertEqual(rc, 0, self.d.log_text()[-3000:])
        self.d.cleanup()

    def start(self, tls, auth):
        self.d = Daemon()
        self.smtp = SmtpPeer(self.d.dir, tls=tls, auth=auth)
        extra = ""
        if auth:
            with open(os.path.join(self.d.dir, "smtp-pass"), "w") as f:
                f.write(auth[1] + "\n")
            extra += f', user = "{auth[0]}", password_file = "{self.d.dir}/smtp-pass"'
        if tls:
            extra += f', ca_file = "{self.smtp.cert_path}"'
        with open(self.d.config, "w") as f:
            f.write(f'shutdown_grace = "2s"\nnotifiers = {{ ops = {{ email = {{ '
                    f'url = "{"smtps" if tls == "implicit" else "smtp"}://127.0.0.1:{self.smtp.port}", '
                    'from = "luaflow@edge-7", '
                    f'to = {{ "ops@example.com", "oncall@example.com" }}{extra} }} }} }}\n'
                    'notify = { failure = { "ops" } }\n')
        self.d.write("nightly.lua", FAILING.replace('notify = { failure = { "j" }, success = { "j" } },', ""))
        self.d.write("told.lua", 'return workflow { actions = { a = { run = function() notify("ops", '
                                 '{ subject = "Überwachung fehlgeschlagen ✓", body = "Grüße" }) end } } }')
        self.d.start()

    def check_failure_mail(self):
        report = self.d.ctl_json("run", "nightly", "--wait", expect_rc=1)
        [m] = self.smtp.wait_for(1)
        [n] = sent(self.d, report["id"], 1)["notifications"]
        p = m["parsed"]
        self.assertEqual(m["mail_from"], "luaflow@edge-7")
        self.assertEqual(sorted(m["rcpt_tos"]), ["oncall@example.com", "ops@example.com"])
        self.assertEqual(p["Subject"], "[luaflow] nightly failed")
        self.assertEqual(p["From"], "luaflow@edge-7")
        self.assertIn("ops@example.com", p["To"])
        self.assertTrue(p["Message-ID"].startswith(f"<{n['id']}@"), p["Message-ID"])
        self.assertIsNotNone(p["Date"].datetime)
        text = p.get_body(preferencelist=("plain",)).get_content()
        self.assertIn("Could not resolve host", text)
        self.assertIn(f"luaflowctl logs {report['id']}", text)
        return m

    def test_plain(self):
        self.start(tls=False, auth=None)
        m = self.check_failure_mail()
        self.assertFalse(m["tls"])
        self.d.ctl_json("run", "told", "--wait")
        told = self.smtp.wait_for(2)[1]["parsed"]
        self.assertEqual(told["Subject"], "Überwachung fehlgeschlagen ✓")
        self.assertIn("Grüße", told.get_body(preferencelist=("plain",)).get_content())

    def test_starttls_and_auth(self):
        self.start(tls=True, auth=("luaflow", "s3cret"))
        m = self.check_failure_mail()
        self.assertTrue(m["tls"])
        self.assertEqual(m["auth_user"], "luaflow")
        rc, out, err = self.d.ctl("notify", "test", "ops")
        self.assertEqual(rc, 0, err)
        self.smtp.wait_for(2)

    def test_smtps_and_auth(self):
        self.start(tls="implicit", auth=("luaflow", "s3cret"))
        m = self.check_failure_mail()
        self.assertTrue(m["tls"])
        self.assertEqual(m["auth_user"], "luaflow")

    def test_a_wrong_password_is_the_servers_own_words(self):
        self.start(tls=True, auth=("luaflow", "s3cret"))
        with open(os.path.join(self.d.dir, "smtp-pass"), "w") as f:
            f.write("wrong\n")
        self.d.ctl("reload")  # password files are read again
        rc, out, err = self.d.ctl("notify", "test", "ops")
        self.assertEqual(rc, 1)
        self.assertIn("notifier ops: Login denied", err)


if __name__ == "__main__":
    main()
