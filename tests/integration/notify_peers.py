"""Real notification receivers on 127.0.0.1 for the notification integration tests (STYLE 2.11).

SmtpPeer is an aiosmtpd server (optionally STARTTLS with a throw-away self-signed certificate, optionally
AUTH PLAIN/LOGIN); WebhookPeer is an HTTP/1.1 server whose answer a test sets through a file while it runs.
Each runs in its own /usr/bin/python3 subprocess (this file, run as `notify_peers.py smtp|webhook DIR PORT
PARENT_PID OPTIONS_JSON`), so that a test can stop, kill and restart it; it exits by itself when its parent
dies. Each records what it receives, before it answers, as JSON lines in DIR:

    self.peer = WebhookPeer(self.d.dir)   # self.peer.stop() in tearDown
    self.peer.set_mode("status:500")
    ... the daemon posts to self.peer.url() ...
    [request] = self.peer.wait_for(1)

`python3 notify_peers.py selftest` checks both with smtplib, urllib and the curl CLI, and prints "ok".
"""
import email
import email.policy
import json
import os
import signal
import subprocess
import sys
import threading
import time

PYTHON = "/usr/bin/python3"


class _Peer:
    """A server subprocess on 127.0.0.1 that prints its port once it listens; records in DIR/KIND-RECORDS.jsonl."""
    KIND = RECORDS = ""

    def __init__(self, dir, options=None):
        self.dir, self.options, self.proc = dir, options or {}, None
        self.port = 0  # the first start() binds a free port, later ones the same port
        self.records_path = os.path.join(dir, f"{self.KIND}-{self.RECORDS}.jsonl")
        self.log_path = os.path.join(dir, f"{self.KIND}-peer.log")  # the subprocess's stderr
        self.start()

    def start(self):
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen(
                [PYTHON, os.path.abspath(__file__), self.KIND, self.dir, str(self.port), str(os.getpid()),
                 json.dumps(self.options)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, text=True)
        line = self.proc.stdout.readline()
        self.proc.stdout.close()
        if not line.strip().isdigit():
            self.kill()
            with open(self.log_path) as f:
                raise RuntimeError(f"the {self.KIND} peer did not start:\n{f.read()[-3000:]}")
        self.port = int(line)
        return self

    def stop(self, sig=signal.SIGTERM):
        """Ends it with sig (SIGKILL after 10 s); a no-op when it is not running."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self):
        self.stop(signal.SIGKILL)

    def _records(self):
        try:
            with open(self.records_path, encoding="utf-8") as f:
                return [json.loads(line) for line in f if line.endswith("\n")]
        except FileNotFoundError:
            return []

    def wait_for(self, n, timeout=15):
        """The records, once there are at least n."""
        deadline = time.monotonic() + timeout
        while len(records := self._records()) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {n} {self.RECORDS} on the {self.KIND}"
                                     f" peer; got {len(records)}: {records!r:.2000}")
            time.sleep(0.02)
        return records

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class SmtpPeer(_Peer):
    """tls: STARTTLS offered and required (before MAIL and AUTH), or "implicit": TLS from the first byte
    (smtps://); auth=(user, password): AUTH PLAIN/LOGIN required (over plain text too when not tls)."""
    KIND, RECORDS = "smtp", "messages"

    def __init__(self, dir, tls=False, auth=None):
        self.cert_path = os.path.join(dir, "smtp-cert.pem") if tls else None
        if tls and not os.path.exists(self.cert_path):
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                            "-keyout", os.path.join(dir, "smtp-key.pem"), "-out", self.cert_path],
                           check=True, capture_output=True)
        super().__init__(dir, {"tls": tls, "auth": list(auth) if auth else None})

    def messages(self):
        """Records {mail_from, rcpt_tos, data, auth_user, tls}, each with "parsed": an email.message.EmailMessage
        of the bytes received, CRLF line ends made LF (so that a body's get_content() ends with "\\n")."""
        records = self._records()
        for r in records:
            raw = r["data"].replace("\r\n", "\n").encode("utf-8", "surrogateescape")
            r["parsed"] = email.message_from_bytes(raw, policy=email.policy.default)
        return records

    def wait_for(self, n, timeout=15):
        super().wait_for(n, timeout)
        return self.messages()


class WebhookPeer(_Peer):
    """Records {method, path, headers, body}. Its answer is set by DIR/webhook-mode, read at each request:
    ok (200 "ok"), status:NNN, hold (never answers), hold-then-ok (answers 200 once the mode is ok)."""
    KIND, RECORDS = "webhook", "requests"

    def url(self, path="/hook"):
        return f"http://127.0.0.1:{self.port}{path}"

    def set_mode(self, mode):
        path = os.path.join(self.dir, "webhook-mode")
        with open(path + ".tmp", "w") as f:
            f.write(mode)
        os.rename(path + ".tmp", path)

    def requests(self):
        return self._records()


def _append(path, record):
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def serve_smtp(dir, port, tls, auth):
    import asyncio
    import ssl
    from aiosmtpd.smtp import SMTP, AuthResult

    context = None
    implicit = tls == "implicit"
    if tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(os.path.join(dir, "smtp-cert.pem"), os.path.join(dir, "smtp-key.pem"))

    def authenticator(server, session, envelope, mechanism, login):
        ok = mechanism in ("PLAIN", "LOGIN") and [login.login.decode(), login.password.decode()] == auth
        return AuthResult(success=ok, handled=False, auth_data=auth[0] if ok else None)

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            _append(os.path.join(dir, "smtp-messages.jsonl"), {
                "mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                "data": envelope.original_content.decode("utf-8", "surrogateescape"),
                "auth_user": session.auth_data if session.authenticated else None,
                "tls": session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None})
            return "250 OK"

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(
        lambda: SMTP(Handler(), hostname="127.0.0.1", tls_context=None if implicit else context,
                     require_starttls=bool(tls) and not implicit, auth_required=bool(auth),
                     auth_require_tls=bool(tls) and not implicit,
                     authenticator=authenticator if auth else None, loop=loop),
        "127.0.0.1", port, reuse_address=True, ssl=context if implicit else None))
    print(server.sockets[0].getsockname()[1], flush=True)
    loop.run_forever()


def serve_webhook(dir, port):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    lock = threading.Lock()

    def mode():
        try:
            with open(os.path.join(dir, "webhook-mode")) as f:
                return f.read().strip() or "ok"
        except FileNotFoundError:
            return "ok"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def read_body(self):
            if "chunked" not in self.headers.get("Transfer-Encoding", "").lower():
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b""
            while size := int(self.rfile.readline().split(b";")[0], 16):
                body += self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return body

        def handle_any(self):
            body = self.read_body().decode("utf-8", "surrogateescape")
            with lock:
                _append(os.path.join(dir, "webhook-requests.jsonl"), {
                    "method": self.command, "path": self.path, "headers": dict(self.headers), "body": body})
            m = mode()
            while m.startswith("hold") and not (m == "hold-then-ok" and mode() == "ok"):
                time.sleep(0.05)
            status = int(m[len("status:"):]) if m.startswith("status:") else 200
            answer = b"ok" if status == 200 else f"status {status}".encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(answer)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any

    ThreadingHTTPServer.allow_reuse_address = ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


def selftest(dir):
    import shutil
    import smtplib
    import ssl
    import urllib.error
    import urllib.request

    def fails(f, *errors):
        try:
            f()
        except errors:
            return True
        raise AssertionError(f"{f} did not fail")

    msg = ("From: a@x\r\nTo: b@y\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\nMessage-ID: <1@x>\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nh\u00e9llo\r\n")
    os.mkdir(os.path.join(dir, "plain"))
    with SmtpPeer(os.path.join(dir, "plain")) as p, smtplib.SMTP("127.0.0.1", p.port) as s:
        s.sendmail("a@x", ["b@y"], msg.encode())
        [m] = p.wait_for(1)
        assert (m["mail_from"], m["rcpt_tos"], m["auth_user"], m["tls"]) == ("a@x", ["b@y"], None, False), m
        assert m["parsed"]["Subject"] == "caf\u00e9", m
        assert m["parsed"].get_body(("plain",)).get_content() == "h\u00e9llo\n", m

    with SmtpPeer(dir, tls=True, auth=("user", "pass")) as p:
        with smtplib.SMTP("127.0.0.1", p.port) as s:
            assert s.docmd("MAIL FROM:<a@x>")[0] == 530  # STARTTLS first
            s.starttls(context=ssl.create_default_context(cafile=p.cert_path))
            fails(lambda: s.login("user", "wrong"), smtplib.SMTPAuthenticationError)
            s.login("user", "pass")
            s.sendmail("a@x", ["b@y", "c@z"], msg.encode())
        [m] = p.wait_for(1)
        assert (m["rcpt_tos"], m["auth_user"], m["tls"]) == (["b@y", "c@z"], "user", True), m
        if shutil.which("curl"):
            with open(os.path.join(dir, "mail.txt"), "w", encoding="utf-8", newline="") as f:
                f.write(msg)
            subprocess.run(["curl", "-sS", "--url", f"smtp://127.0.0.1:{p.port}", "--mail-from", "a@x",
                            "--mail-rcpt", "b@y", "--upload-file", f.name, "--ssl-reqd", "--cacert", p.cert_path,
                            "--user", "user:pass"], check=True, timeout=30)
            m = p.wait_for(2)[1]
            assert (m["mail_from"], m["auth_user"], m["tls"], m["data"]) == ("a@x", "user", True, msg), m
        print("curl:", "delivered over STARTTLS as user" if shutil.which("curl") else "not installed, not tested")

    with WebhookPeer(dir) as w:
        def post(timeout=10):
            req = urllib.request.Request(w.url(), data=b'{"a": 1}', headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=timeout) as r:
                    return r.status, r.read()
            except urllib.error.HTTPError as e:
                return e.code, e.read()
        assert post() == (200, b"ok")
        w.set_mode("status:500")
        assert post() == (500, b"status 500")
        w.set_mode("hold")
        fails(lambda: post(timeout=1), TimeoutError, urllib.error.URLError)
        r = w.wait_for(3)[2]
        assert (r["method"], r["path"], r["body"], r["headers"]["Content-Type"]) == \
            ("POST", "/hook", '{"a": 1}', "application/json"), r
        w.set_mode("hold-then-ok")
        result = []
        t = threading.Thread(target=lambda: result.append(post()))
        t.start()
        w.wait_for(4)
        assert not result
        w.set_mode("ok")
        t.join(10)
        assert result == [(200, b"ok")], result
        port = w.port
        w.kill()
        fails(lambda: post(timeout=2), urllib.error.URLError)
        w.start()
        assert w.port == port and post() == (200, b"ok") and len(w.requests()) == 5


if __name__ == "__main__":
    if sys.argv[1:] == ["selftest"]:
        import shutil
        import tempfile
        tmp = tempfile.mkdtemp(prefix="notify-peers-")
        try:
            selftest(tmp)
        finally:
            shutil.rmtree(tmp)
        print("ok")
    else:
        kind, dir, port, parent, options = sys.argv[1:]

        def exit_with_parent():
            while os.getppid() == int(parent):
                time.sleep(0.2)
            os._exit(1)
        threading.Thread(target=exit_with_parent, daemon=True).start()
        if kind == "smtp":
            serve_smtp(dir, int(port), **json.loads(options))
        else:
            serve_webhook(dir, int(port))
