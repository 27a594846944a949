"""Issue 8 (hostile input), items 1 to 4: no client of the control socket can crash the daemon or make it
grow without bound. Each test is the reproduction from the issue; the daemon must answer `status`
afterwards and exit cleanly at the end."""
import json
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import DaemonTest, wait_for  # noqa: E402

HELLO = "return workflow { actions = { a = { run = function() return 'hi' end } } }"
SLOW = "return workflow { actions = { a = { run = function() sleep(30) end } } }"


class SocketHostileTest(DaemonTest):
    WORKFLOWS = {"h.lua": HELLO, "slow.lua": SLOW}

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.d.socket)
        return s

    def ask(self, request):
        return self.d.send_line(request)

    def assert_alive(self):
        self.assertIsNone(self.d.proc.poll(), "luaflowd exited:\n" + self.d.log_text()[-3000:])
        self.assertEqual(self.d.ctl("status")[0], 0)

    def test_pipelining_client_that_never_reads(self):
        s = self.connect()
        s.settimeout(5)
        try:
            for _ in range(2000):
                s.sendall(b'{"id":1,"method":"list"}\n' * 1000)
        except OSError:
            pass  # the daemon closed a client that does not read: that is the point
        finally:
            s.close()
        self.assert_alive()

    def test_a_line_over_16_mib_is_answered_with_the_reason_then_closed(self):
        s = self.connect()
        s.settimeout(30)
        try:
            s.sendall(b'{"id":1,"method":"status"}\n')  # answered first, in order
            chunk = b"x" * (1 << 20)
            try:
                for _ in range(20):  # 20 MiB without a newline; reading stops past 16 MiB
                    s.sendall(chunk)
            except OSError:
                pass
            data = b""
            while True:
                part = s.recv(65536)
                if not part:
                    break  # closed by the daemon after the answers
                data += part
        finally:
            s.close()
        lines = [json.loads(l) for l in data.decode().splitlines()]
        self.assertEqual(len(lines), 2, lines)
        self.assertIn("result", lines[0])
        self.assertEqual(lines[1]["error"]["code"], "invalid")
        self.assertEqual(lines[1]["error"]["message"], "request line is longer than 16 MiB; the connection is closed")
        self.assert_alive()

    def test_parameter_of_the_wrong_type(self):
        for method, params, name in (("run", {"workflow": "h", "wait": "yes"}, "wait"),
                                     ("logs", {"execution": "x", "follow": 1}, "follow"),
                                     ("executions", {"workflow": 5}, "workflow"),
                                     ("executions", {"limit": "ten"}, "limit")):
            reply = self.ask(json.dumps({"id": 1, "method": method, "params": params}) + "\n")
            self.assertEqual(reply["error"]["code"], "invalid", reply)
            self.assertIn(f"parameter '{name}'", reply["error"]["message"])
        # Refused before it acted: no execution was submitted by the bad `run`.
        self.assertEqual(self.d.ctl_json("executions"), [])
        self.assert_alive()

    def test_deep_nesting_in_id_and_in_a_kv_value(self):
        deep = "[" * 100000 + "]" * 100000
        reply = self.ask('{"id":' + deep + ',"method":"list"}\n')
        self.assertIn("nested deeper than 128", reply["error"]["message"])
        reply = self.ask('{"id":2,"method":"kv_set","params":{"key":"k","value":' + deep + '}}\n')
        self.assertIn("nested deeper than 128", reply["error"]["message"])
        # 128 levels are fine.
        ok = "[" * 120 + "]" * 120
        reply = self.ask('{"id":3,"method":"kv_set","params":{"key":"k","value":' + ok + '}}\n')
        self.assertNotIn("error", reply)
        self.assert_alive()

    def test_requests_behind_a_wait_that_are_never_read(self):
        # Past 1024 answers outstanding the daemon stops reading from the client (back-pressure): its
        # sends block, the daemon's memory stays bounded, and everyone else is served.
        eid = self.d.ctl_json("run", "slow")["id"]
        s = self.connect()
        s.settimeout(5)
        blocked = False
        try:
            s.sendall(json.dumps({"id": 0, "method": "wait", "params": {"execution": eid}}).encode() + b"\n")
            for _ in range(2000):
                s.sendall(b'{"id":1,"method":"status"}\n' * 100)
        except OSError:
            blocked = True
        self.assertTrue(blocked, "the daemon read 200,000 requests behind a wait")
        wait_for(lambda: "requests ahead of their answers; reading from it waits" in self.d.log_text(),
                 timeout=5, what="the log line about the client")
        self.assert_alive()
        s.close()
        self.d.ctl_json("cancel", eid)
        self.assert_alive()

    def test_a_pipelining_client_gets_every_answer(self):
        # 3000 requests behind a wait: the daemon reads 1024, waits, and reads on as the answers go.
        eid = self.d.ctl_json("run", "slow")["id"]
        s = self.connect()
        s.settimeout(30)
        lines = [json.dumps({"id": 0, "method": "wait", "params": {"execution": eid}})]
        lines += [json.dumps({"id": i, "method": "status"}) for i in range(1, 3001)]
        s.sendall(("\n".join(lines) + "\n").encode())
        self.d.ctl_json("cancel", eid)
        buf = b""
        while buf.count(b"\n") < 3001:
            chunk = s.recv(1 << 16)
            self.assertTrue(chunk, "the daemon closed the connection")
            buf += chunk
        answers = [json.loads(line) for line in buf.splitlines()]
        self.assertEqual([a["id"] for a in answers], list(range(3001)))
        self.assertTrue(all("result" in a for a in answers[1:]))
        s.close()

if __name__ == "__main__":
    unittest.main()
