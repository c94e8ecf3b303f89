#!/usr/bin/python3
"""Local receivers for haven's alert delivery in system tests: standard library only,
loopback only.

SmtpSink is a small threaded SMTP server on 127.0.0.1 (a random port unless one is
given). It speaks enough SMTP for curl and haven: EHLO/HELO, MAIL, RCPT, DATA, RSET,
NOOP, QUIT (no STARTTLS, no AUTH, so haven's smtp:// STARTTLS-if-offered sends in
clear). Each message it accepts is recorded as a Mail (envelope sender, recipients,
raw data with CRLF line ends and dot-stuffing undone, the time it arrived). Give
reject={"nobody@school.example"} to answer RCPT for those addresses with 550.

WebhookSink is an http.server on 127.0.0.1 recording each request as a Hook (method,
path, headers, raw body, body parsed as JSON or None, time). fail_next(n, status=500)
makes it answer the next n requests with that status, to test retries; the others get
200 and {"ok": true}.

Both are context managers, and wait_for(n, timeout) blocks until at least n items have
arrived and returns the list of all of them (AssertionError on timeout):

    with SmtpSink(reject={"nobody@school.example"}) as smtp, WebhookSink() as hook:
        config = "alert-smtp %s\\nalert-webhook %s\\n" % (smtp.url, hook.url)
        ...                                         # start haven, make it raise an alert
        mail = smtp.wait_for(1, timeout=10)[0]
        assert "dsl@school.example" in mail.rcpt_to
        msg = mail.message()                        # email.message.EmailMessage
        assert "self-harm" in msg["Subject"]
        assert hook.wait_for(1)[0].json["severity"] == 5

Run on its own to start both and print their URLs until interrupted:

    /usr/bin/python3 tests/system/sinks.py
"""

import email
import email.policy
import http.server
import json
import socketserver
import threading
import time

MAX_LINE = 4096  # an SMTP command line longer than this is refused (RFC 5321: 512)
MAX_DATA = 32 * 1024 * 1024  # a message or webhook body larger than this is refused


class Mail:
    """One message accepted by SmtpSink."""

    def __init__(self, mail_from, rcpt_to, data, received):
        self.mail_from = mail_from  # "haven@school.example" (no angle brackets)
        self.rcpt_to = rcpt_to  # ["dsl@school.example", ...]
        self.data = data  # bytes, CRLF line ends, as sent after DATA
        self.received = received  # time.time() when the final "." arrived

    def message(self):
        """The data parsed as an email.message.EmailMessage (headers decoded)."""
        return email.message_from_bytes(self.data, policy=email.policy.default)

    def text(self):
        """The body as text (quoted-printable and charset decoded)."""
        return self.message().get_content()

    def __repr__(self):
        return "Mail(from=%r, to=%r, %d bytes)" % (self.mail_from, self.rcpt_to, len(self.data))


class Hook:
    """One request received by WebhookSink."""

    def __init__(self, method, path, headers, body, status, received):
        self.method = method
        self.path = path
        self.headers = headers  # email.message.Message: case-insensitive lookup
        self.body = body  # bytes
        self.status = status  # what the sink answered
        self.received = received
        try:
            self.json = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            self.json = None

    def __repr__(self):
        return "Hook(%s %s -> %d, %d bytes)" % (self.method, self.path, self.status, len(self.body))


class _Sink:
    """What both sinks share: a list of received items, a condition, a thread."""

    def __init__(self):
        self._items = []
        self._cond = threading.Condition()
        self._server = None
        self._thread = None

    def _record(self, item):
        with self._cond:
            self._items.append(item)
            self._cond.notify_all()

    @property
    def items(self):
        with self._cond:
            return list(self._items)

    def wait_for(self, n, timeout=10.0):
        """Wait until at least n items have arrived; return all of them."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._items) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("%s: %d received, expected %d within %.1f s" % (
                        type(self).__name__, len(self._items), n, timeout))
                self._cond.wait(left)
            return list(self._items)

    def clear(self):
        with self._cond:
            self._items.clear()

    @property
    def port(self):
        return self._server.server_address[1]

    def start(self):
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class _ThreadingTCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def _addr(arg):
    """'FROM:<a@b> SIZE=10' -> 'a@b'."""
    arg = arg.split(":", 1)[1].strip() if ":" in arg else arg
    if arg.startswith("<"):
        return arg[1:arg.find(">")] if ">" in arg else arg[1:]
    return arg.split(" ", 1)[0]


class _SmtpHandler(socketserver.StreamRequestHandler):
    timeout = 30

    def reply(self, line):
        self.wfile.write(line.encode("ascii") + b"\r\n")
        self.wfile.flush()

    def handle(self):
        sink = self.server.sink
        mail_from, rcpt_to = None, []
        self.reply("220 sink.test ESMTP haven test sink")
        while True:
            line = self.rfile.readline(MAX_LINE + 1)
            if not line:
                return
            if len(line) > MAX_LINE:
                self.reply("500 5.5.2 line too long")
                return
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            verb = text.split(" ", 1)[0].upper()
            if verb == "EHLO":
                self.reply("250-sink.test")
                self.reply("250-8BITMIME")
                self.reply("250 SIZE %d" % MAX_DATA)
            elif verb == "HELO":
                self.reply("250 sink.test")
            elif verb == "NOOP":
                self.reply("250 ok")
            elif verb == "RSET":
                mail_from, rcpt_to = None, []
                self.reply("250 ok")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            elif verb == "MAIL" and text[4:].strip().upper().startswith("FROM:"):
                mail_from, rcpt_to = _addr(text[4:]), []
                self.reply("250 ok")
            elif verb == "RCPT" and text[4:].strip().upper().startswith("TO:"):
                addr = _addr(text[4:])
                if mail_from is None:
                    self.reply("503 5.5.1 MAIL first")
                elif addr.lower() in sink.reject:
                    self.reply("550 5.1.1 <%s>: recipient rejected by test sink" % addr)
                else:
                    rcpt_to.append(addr)
                    self.reply("250 ok")
            elif verb == "DATA":
                if not rcpt_to:
                    self.reply("503 5.5.1 RCPT first")
                    continue
                self.reply("354 end with <CRLF>.<CRLF>")
                data, size = [], 0
                while True:
                    chunk = self.rfile.readline(MAX_DATA)
                    if not chunk:
                        return
                    if chunk in (b".\r\n", b".\n"):
                        break
                    if chunk.startswith(b"."):
                        chunk = chunk[1:]
                    size += len(chunk)
                    if size > MAX_DATA:
                        self.reply("552 5.3.4 message too big")
                        return
                    data.append(chunk)
                sink._record(Mail(mail_from, rcpt_to, b"".join(data), time.time()))
                mail_from, rcpt_to = None, []
                self.reply("250 ok queued")
            else:
                self.reply("502 5.5.1 command not implemented")


class SmtpSink(_Sink):
    """A threaded SMTP server on 127.0.0.1 that records what it receives."""

    def __init__(self, host="127.0.0.1", port=0, reject=()):
        super().__init__()
        self.reject = {a.lower() for a in reject}
        self._server = _ThreadingTCPServer((host, port), _SmtpHandler)
        self._server.sink = self
        self.start()

    @property
    def url(self):
        return "smtp://127.0.0.1:%d" % self.port

    @property
    def mails(self):
        return self.items


class _HookHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30

    def log_message(self, fmt, *args):  # quiet
        pass

    def _any(self):
        sink = self.server.sink
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_DATA:
            self.send_error(413)
            return
        body = self.rfile.read(length) if length else b""
        with sink._cond:
            status = 200
            if sink._fail_left > 0:
                sink._fail_left -= 1
                status = sink._fail_status
        answer = b'{"ok": true}' if status < 300 else b'{"error": "test sink told to fail"}'
        # recorded before answering, so a sender that has its answer finds it recorded
        sink._record(Hook(self.command, self.path, self.headers, body, status, time.time()))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_POST = do_PUT = do_GET = _any


class _ThreadingHTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class WebhookSink(_Sink):
    """An HTTP receiver on 127.0.0.1 that records each request (see the module doc)."""

    def __init__(self, host="127.0.0.1", port=0):
        super().__init__()
        self._fail_left = 0
        self._fail_status = 500
        self._server = _ThreadingHTTPServer((host, port), _HookHandler)
        self._server.sink = self
        self.start()

    def fail_next(self, n, status=500):
        """Answer the next n requests with status instead of 200."""
        with self._cond:
            self._fail_left = n
            self._fail_status = status

    @property
    def url(self):
        return "http://127.0.0.1:%d/hook" % self.port

    @property
    def hooks(self):
        return self.items


if __name__ == "__main__":
    with SmtpSink() as smtp, WebhookSink() as hook:
        print("smtp", smtp.url)
        print("webhook", hook.url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
