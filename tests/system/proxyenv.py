"""A small world for the proxy's system tests: `haven serve`, a stub DNS, local origins.

Everything listens on 127.0.0.1 only and uses Debian's /usr/bin/python3 standard library.

    dns = StubDNS(["*.test A 127.0.0.1", ...])        # tests/system/stubdns.py, on a free port
    origin = Origin()                                  # an HTTP/1.1 server with test routes
    echo = EchoServer()                                # raw TCP echo (for CONNECT tunnels)
    h = Haven(tmpdir, db, policy=POLICY, resolver=dns.port, extra="timeout-keepalive 1s")
    h.start()                                          # waits for "listening on"
    r = h.get("http://site.test:%d/hello" % origin.port)
    h.stop()                                           # SIGTERM; checks exit 0, no sanitizer report

Hang guards (WAIT) are generous and never asserted as timings.
"""

import hashlib
import json
import re
import select
import signal
import socket
import socketserver
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from helpers import assert_no_sanitizer_report, haven_bin, haven_env, write

HERE = Path(__file__).resolve().parent
STUBDNS = HERE / "stubdns.py"
PYTHON = "/usr/bin/python3"
WAIT = 30          # a hang guard: something that has not happened in this long is missing
LOG_WAIT = 15      # the access log is flushed at least once a second

REF_RE = re.compile(r"HVN-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}")

# The test policy: pupils (default), staff, lab (for network ranges), signin (for proxy sign-in).
POLICY = """\
school "Hillside Test Academy"
timezone Europe/London
default allow

group pupils {
    description "Pupils"
    block gambling
    warn games
    default allow
    safe-search on
    youtube strict
    unsafe-search block
    block-ip-hosts off
    ports any
    connect-ports any
}

group staff {
    description "Staff"
    default allow
    safe-search off
    youtube off
    unsafe-search allow
    ports any
    connect-ports any
}

group lab {
    description "The computer lab"
    block gambling social-networks
    default allow
    safe-search on
    youtube moderate
    block-ip-hosts off
    ports any
    connect-ports any
}

group signin {
    description "Signed-in users"
    block gambling
    default allow
    block-ip-hosts off
    ports any
    connect-ports any
}

default-group pupils
"""

# The category lists compiled for the tests (category -> hosts).
LISTS = {
    "gambling": ["casino.test"],
    "games": ["games.test"],
    "social-networks": ["social.test"],
    "iwf": ["abuse.test"],
}

# The stub zone: every *.test name and the safe-search hosts are this machine.
ZONE = [
    "*.test A 127.0.0.1",
    "forcesafesearch.google.com A 127.0.0.1",
    "restrict.youtube.com A 127.0.0.1",
    "restrictmoderate.youtube.com A 127.0.0.1",
    "strict.bing.com A 127.0.0.1",
    "safe.duckduckgo.com A 127.0.0.1",
    "www.google.com A 127.0.0.1",
    "www.youtube.com A 127.0.0.1",
    "slow.example DROP",
]


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def compile_lists(directory, lists=None):
    """A category database compiled from small lists in directory; returns its path."""
    from helpers import compile_db
    directory = Path(directory)
    specs = []
    for cat, hosts in (lists or LISTS).items():
        f = write(directory / ("%s.txt" % cat), "".join(h + "\n" for h in hosts))
        specs += ["--list", "%s=%s" % (cat, f)]
    db = directory / "proxytest.cdb"
    compile_db(db, specs)
    return db


def pattern_bytes(n, seed=b"haven"):
    """n deterministic bytes (for large bodies), generated in 64 KiB blocks."""
    block = b"".join(hashlib.sha256(seed + i.to_bytes(4, "big")).digest() for i in range(2048))
    full, rest = divmod(n, len(block))
    return block * full + block[:rest]


def iter_pattern(n, seed=b"haven"):
    block = pattern_bytes(65536, seed)
    while n > 0:
        take = min(n, len(block))
        yield block[:take]
        n -= take


# ---------------------------------------------------------------------------- stub DNS

class StubDNS:
    """tests/system/stubdns.py with records; .port; .queries() reads its log."""

    def __init__(self, records, log_dir, args=()):
        self.log = Path(log_dir) / "stubdns.log"
        argv = [PYTHON, str(STUBDNS), "--log", str(self.log)] + [str(a) for a in args]
        for r in records:
            argv += ["--record", r]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], WAIT)
        line = self.proc.stdout.readline() if ready else ""
        if not line.strip().isdigit():
            self.stop()
            raise AssertionError("stubdns did not start: %r %s" % (line, self.proc.stderr.read()))
        self.port = int(line)

    def queries(self):
        try:
            return self.log.read_text().split("\n")
        except FileNotFoundError:
            return []

    def asked(self, name):
        return any(q.split(" ")[0] == name for q in self.queries() if q)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(WAIT)
        for f in (self.proc.stdout, self.proc.stderr):
            f.close()


# ---------------------------------------------------------------------------- origins

def read_chunked(rfile):
    """Read a chunked body from a file; returns the bytes."""
    out = bytearray()
    while True:
        line = rfile.readline(1024)
        size = int(line.split(b";")[0].strip(), 16)
        if size == 0:
            while rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                pass
            return bytes(out)
        out += rfile.read(size)
        rfile.readline(8)


class OriginHandler(BaseHTTPRequestHandler):
    """Routes:
      /hello            "hello from origin NAME"
      /echo             JSON: request line, headers, body length and sha256
      /upload           the same as /echo (for POST/PUT bodies, Content-Length or chunked);
                        /search, /results and /watch too (search engines)
      /big?n=BYTES      n pattern bytes with Content-Length
      /chunked?n=BYTES  n pattern bytes, chunked, in uneven chunks
      /close?n=BYTES    n pattern bytes delimited by closing the connection
      /slow?ms=MS       the head at once, the body ("slow done") after MS milliseconds
      /slowhead?ms=MS   waits MS milliseconds before the head
      /truncated?n=N    promises N bytes, sends N/2 and closes
      /gate             waits until Origin.gate is set, then answers "gate open"
      /drop-next        answers "armed"; the next request on the same connection is read
                        and the connection closed without an answer (a stale keep-alive)
      anything else     404
    Each request's client port is kept in Origin.peers; Origin.open counts open connections.
    """

    protocol_version = "HTTP/1.1"
    server_version = "origin"

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        self.drop_next = False
        with self.server.origin.lock:
            self.server.origin.open += 1

    def finish(self):
        with self.server.origin.lock:
            self.server.origin.open -= 1
        super().finish()

    def _body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if te.lower() == "chunked":
            return read_chunked(self.rfile)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status, body, ctype="text/plain", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _route(self):
        u = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(u.query).items()}
        self.server.origin.seen.append(self.requestline)
        self.server.origin.peers.append(self.client_address[1])
        if self.drop_next:
            self._body()
            self.close_connection = True
            return None
        if u.path == "/drop-next":
            self.drop_next = True
            return self._send(200, b"armed")
        if u.path == "/hello":
            return self._send(200, ("hello from origin %s" % self.server.origin.name).encode())
        if u.path in ("/echo", "/upload", "/search", "/results", "/watch"):
            body = self._body()
            info = {"request_line": self.requestline, "headers": list(self.headers.items()),
                    "body_len": len(body), "body_sha256": hashlib.sha256(body).hexdigest(),
                    "origin": self.server.origin.name}
            return self._send(200, json.dumps(info).encode(), "application/json")
        if u.path == "/big":
            n = int(q.get("n", "0"))
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            for part in iter_pattern(n):
                self.wfile.write(part)
            return None
        if u.path == "/chunked":
            n = int(q.get("n", "0"))
            data = pattern_bytes(n)
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            off, step = 0, 1
            while off < n:
                take = min(step, n - off)
                self.wfile.write(b"%x\r\n" % take + data[off:off + take] + b"\r\n")
                off += take
                step = step * 3 + 7
            self.wfile.write(b"0\r\nX-Trailer: yes\r\n\r\n")
            return None
        if u.path == "/close":
            n = int(q.get("n", "0"))
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(pattern_bytes(n))
            self.close_connection = True
            return None
        if u.path == "/slow":
            body = b"slow done"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.flush()
            self.server.origin.slow_started.set()
            time.sleep(int(q.get("ms", "1000")) / 1000)
            self.wfile.write(body)
            return None
        if u.path == "/slowhead":
            time.sleep(int(q.get("ms", "1000")) / 1000)
            return self._send(200, b"late head")
        if u.path == "/truncated":
            n = int(q.get("n", "1000"))
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            self.wfile.write(pattern_bytes(n // 2))
            self.wfile.flush()
            self.close_connection = True
            return None
        if u.path == "/gate":
            self.server.origin.gate_reached.set()
            self.server.origin.gate.wait(WAIT)
            return self._send(200, b"gate open")
        return self._send(404, b"no such route")

    def do_GET(self):
        self._route()

    do_HEAD = do_GET
    do_POST = do_GET
    do_PUT = do_GET


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 2048
    allow_reuse_address = True


class Origin:
    """An HTTP/1.1 origin on 127.0.0.1 (OriginHandler's routes); .port, .seen (request lines)."""

    def __init__(self, name="origin"):
        self.name = name
        self.seen = []
        self.peers = []
        self.open = 0
        self.lock = threading.Lock()
        self.gate = threading.Event()
        self.gate_reached = threading.Event()
        self.slow_started = threading.Event()
        self.httpd = _Server(("127.0.0.1", 0), OriginHandler)
        self.httpd.origin = self
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.gate.set()
        self.httpd.shutdown()
        self.httpd.server_close()


class _EchoHandler(socketserver.BaseRequestHandler):
    def handle(self):
        total = 0
        while True:
            data = self.request.recv(65536)
            if not data:
                break
            total += len(data)
            self.request.sendall(data)
        # The client has half-closed: answer after its EOF, then close.
        self.request.sendall(b"\nechoed %d bytes\n" % total)
        self.request.shutdown(socket.SHUT_WR)


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


class EchoServer:
    """A raw TCP echo server: echoes every byte; after the client's EOF it sends
    "\\nechoed N bytes\\n" and closes."""

    def __init__(self):
        self.srv = _TCPServer(("127.0.0.1", 0), _EchoHandler)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


# ---------------------------------------------------------------------------- HTTP client

class Response:
    def __init__(self, status, reason, headers, body, head):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value)
        self.body = body
        self.head = head

    def header(self, name, default=None):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return "<Response %d %s %r>" % (self.status, self.reason, self.body[:300])


class Conn:
    """A client connection to the proxy that reads responses itself (so tests control every byte)."""

    def __init__(self, port, timeout=WAIT):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        data = self.sock.recv(262144)
        if not data:
            raise EOFError("the proxy closed the connection")
        self.buf += data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n, sink=None):
        out = bytearray()
        while n > 0:
            if not self.buf:
                self._fill()
            take = self.buf[:n]
            self.buf = self.buf[n:]
            n -= len(take)
            if sink:
                sink(take)
            else:
                out += take
        return bytes(out)

    def read_head(self):
        """(status, reason, headers, raw head) of the next response head."""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        headers = [tuple(x.strip() for x in l.split(":", 1)) for l in lines[1:]]
        return int(parts[1]), (parts[2] if len(parts) > 2 else ""), headers, head

    def read_response(self, method="GET", sink=None):
        """The next response; with sink, body bytes go to sink(bytes) and .body is b""."""
        while True:
            status, reason, headers, head = self.read_head()
            if not 100 <= status < 200:
                break
        r = Response(status, reason, headers, b"", head)
        body = bytearray()
        put = sink or body.extend
        te = (r.header("Transfer-Encoding") or "").lower()
        cl = r.header("Content-Length")
        if method == "HEAD" or status in (204, 304):
            pass
        elif te == "chunked":
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line() != b"":
                        pass
                    break
                self._exact(size, put)
                self._line()
        elif cl is not None:
            self._exact(int(cl), put)
        else:
            while True:
                if self.buf:
                    put(self.buf)
                    self.buf = b""
                try:
                    self._fill()
                except (EOFError, ConnectionResetError):
                    break
        r.body = bytes(body)
        return r

    def closed_by_peer(self, wait=WAIT):
        """True when the proxy closes the connection (EOF or reset) within wait seconds."""
        self.sock.settimeout(wait)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
                self.buf += data
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


def request_bytes(method, target, host=None, headers=(), body=b""):
    if host is None:
        u = urlsplit(target) if "://" in target else None
        host = u.netloc if u else target
    lines = ["%s %s HTTP/1.1" % (method, target), "Host: %s" % host]
    lines += ["%s: %s" % kv for kv in headers]
    if body and not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in headers):
        lines.append("Content-Length: %d" % len(body))
    if isinstance(body, str):
        body = body.encode()
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# ---------------------------------------------------------------------------- haven serve

class Haven:
    """One `haven serve` in directory: its configuration, policy, data dir and stderr."""

    def __init__(self, directory, db, policy=POLICY, resolver=None, extra="", workers=2,
                 env=None):
        self.dir = Path(directory)
        self.env = dict(env or {})  # more environment variables (HAVEN_TEST_CLOCK_FILE, ...)
        self.data = self.dir / "var"
        self.data.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.policy = write(self.dir / "policy.conf", policy)
        lines = ["listen 127.0.0.1:%d" % self.port, "workers %d" % workers,
                 "policy %s" % self.policy, "database %s" % db, "data-dir %s" % self.data]
        if resolver:
            lines.append("resolver 127.0.0.1:%d" % resolver)
        self.config = write(self.dir / "haven.conf", "\n".join(lines) + "\n" + extra + "\n")
        self.proc = None
        self.err_lines = []
        self.err_cond = threading.Condition()
        self.log_offset = 0

    # -- process

    def start(self):
        env = haven_env()
        env.update(self.env)
        self.proc = subprocess.Popen([haven_bin(), "serve", "--config", str(self.config)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env)
        threading.Thread(target=self._read_stderr, daemon=True).start()
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        if not self.wait_stderr("listening on 127.0.0.1:%d" % self.port):
            self.kill()
            raise AssertionError("haven serve did not start:\n" + self.stderr())
        return self

    def _read_stderr(self):
        for raw in self.proc.stderr:
            with self.err_cond:
                self.err_lines.append(raw.decode("utf-8", "replace"))
                self.err_cond.notify_all()
        with self.err_cond:
            self.err_lines.append(None)  # EOF
            self.err_cond.notify_all()

    def stderr(self):
        with self.err_cond:
            return "".join(l for l in self.err_lines if l)

    def wait_stderr(self, text, wait=WAIT, start=0):
        """True once a stderr line (from line number start on) contains text."""
        deadline = time.monotonic() + wait
        with self.err_cond:
            while True:
                if any(l and text in l for l in self.err_lines[start:]):
                    return True
                if None in self.err_lines:
                    return False
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.err_cond.wait(left)

    def err_count(self):
        with self.err_cond:
            return len(self.err_lines)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def hup(self, expect="reload"):
        """SIGHUP; waits for the reload's log line (ok or failed)."""
        n = self.err_count()
        self.signal(signal.SIGHUP)
        if not (self.wait_stderr("reload", start=n)):
            raise AssertionError("no reload message after SIGHUP:\n" + self.stderr())
        return self.stderr_since(n)

    def stderr_since(self, n):
        with self.err_cond:
            return "".join(l for l in self.err_lines[n:] if l)

    def wait_exit(self, wait=WAIT * 2):
        try:
            rc = self.proc.wait(wait)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("haven serve did not exit:\n" + self.stderr())
        with self.err_cond:
            self.err_cond.wait_for(lambda: None in self.err_lines, WAIT)
        assert_no_sanitizer_report(self.stderr(), "haven serve")
        return rc

    def stop(self):
        """SIGTERM; the exit status must be 0 and stderr free of sanitizer reports."""
        if self.proc is None or self.proc.returncode is not None:
            return
        self.signal(signal.SIGTERM)
        rc = self.wait_exit()
        if rc != 0:
            raise AssertionError("haven serve exited %s:\n%s" % (rc, self.stderr()))

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    # -- client

    def conn(self):
        return Conn(self.port)

    def request(self, method, target, headers=(), body=b"", host=None):
        c = self.conn()
        try:
            c.send(request_bytes(method, target, host, list(headers) + [("Connection", "close")],
                                 body))
            return c.read_response(method)
        finally:
            c.close()

    def get(self, url, headers=()):
        return self.request("GET", url, headers)

    def local(self, path):
        """GET an origin-form path from the proxy itself (/metrics, /proxy.pac, ...)."""
        return self.request("GET", path, host="127.0.0.1:%d" % self.port)

    def metrics(self):
        """/metrics as {"name{labels}": value}."""
        r = self.local("/metrics")
        if r.status != 200:
            raise AssertionError("/metrics: %r" % r)
        out = {}
        for line in r.text.splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def connect(self, authority, headers=()):
        """(Conn, Response) after a CONNECT authority: the tunnel is open when status is 200."""
        c = self.conn()
        c.send(request_bytes("CONNECT", authority, authority, headers))
        # A 200 to CONNECT has no body; a refusal has a Content-Length.
        status, reason, hdrs, head = c.read_head()
        r = Response(status, reason, hdrs, b"", head)
        if status != 200:
            cl = r.header("Content-Length")
            r.body = c._exact(int(cl)) if cl else b""
        return c, r

    # -- access log

    def log_path(self):
        return self.data / "access.log.json"

    def log_records(self):
        try:
            text = self.log_path().read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [json.loads(l) for l in text.splitlines() if l.strip()]

    def wait_log(self, pred, what="a matching access-log record", wait=LOG_WAIT):
        """The first access-log record for which pred(record) is true (waits for the flush)."""
        deadline = time.monotonic() + wait
        while True:
            recs = self.log_records()
            for r in recs:
                if pred(r):
                    return r
            if time.monotonic() > deadline:
                fmt = "%s: no such record in the access log; it has:\n%s" if what.startswith(
                    "BUG:") else "no %s in the access log; it has:\n%s"
                raise AssertionError(fmt % (what, "\n".join(json.dumps(r) for r in recs[-20:])))
            time.sleep(0.1)

    def wait_ref(self, ref):
        return self.wait_log(lambda r: r.get("ref") == ref, "record with ref %s" % ref)
