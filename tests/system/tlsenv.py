"""HTTPS origins and certificates for the inspection tests (tests/system/test_tls.py).

Everything is made with the openssl command in a temporary directory and served on 127.0.0.1:

    pki = OriginPKI(directory)                       # an origin test CA ("Haven Test Origin CA")
    cert, key = pki.issue("good", ["site.test", ...])              # signed by that CA
    cert, key = pki.issue("old", ["expired.test"], expired=True)   # valid only in January 2020
    cert, key = pki.self_signed("self", "selfsigned.test")
    origin = TLSOrigin(cert, key, name="good")       # proxyenv's origin routes, over TLS
    tls = tunnel(haven_port, "site.test", origin.port, ctx)   # TLS through a CONNECT

The origins serve proxyenv.OriginHandler's routes (/hello, /echo, /search, /watch, ...), and
remember the server name (SNI) of every TLS hello they receive (TLSOrigin.snis; None when the
hello named no server).
"""

import shutil
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

from helpers import write
from proxyenv import WAIT, Origin, OriginHandler, _Server

OPENSSL = shutil.which("openssl")


def openssl(*args, input=None):
    """Run openssl; returns its stdout (bytes); fails with its stderr."""
    p = subprocess.run([OPENSSL] + [str(a) for a in args], input=input, capture_output=True,
                       timeout=60)
    if p.returncode != 0:
        raise AssertionError("openssl %s failed: %s" % (" ".join(map(str, args)),
                                                         p.stderr.decode(errors="replace")))
    return p.stdout


def cert_text(pem_or_der, der=False):
    """`openssl x509 -noout -subject -issuer` of a certificate given as PEM or DER bytes."""
    args = ["x509", "-noout", "-subject", "-issuer", "-nameopt", "RFC2253"]
    if der:
        args += ["-inform", "DER"]
    return openssl(*args, input=pem_or_der).decode()


_CA_CONF = """\
[ ca ]
default_ca = origin_ca

[ origin_ca ]
dir = %(dir)s
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
certificate = $dir/origin-ca.pem
private_key = $dir/origin-ca.key
default_md = sha256
policy = anything
copy_extensions = copy
unique_subject = no
email_in_dn = no

[ anything ]
commonName = supplied
organizationName = optional

[ leaf ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


class OriginPKI:
    """A certificate authority for the test origins (not the school's inspection CA)."""

    def __init__(self, directory, name="Haven Test Origin CA"):
        self.dir = Path(directory)
        (self.dir / "newcerts").mkdir(parents=True, exist_ok=True)
        write(self.dir / "index.txt", "")
        write(self.dir / "serial", "1000\n")
        self.conf = write(self.dir / "ca.cnf", _CA_CONF % {"dir": self.dir})
        self.cert = self.dir / "origin-ca.pem"
        self.key = self.dir / "origin-ca.key"
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", self.key, "-out", self.cert, "-days", "30",
                "-subj", "/O=Haven Tests/CN=%s" % name,
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def issue(self, stem, names, expired=False):
        """(cert, key) for names (the first is the CN), signed by this CA; expired: valid only
        from 2020-01-01 to 2020-01-02."""
        key, csr, cert = (self.dir / ("%s.%s" % (stem, ext)) for ext in ("key", "csr", "pem"))
        san = ",".join("DNS:%s" % n for n in names)
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", key, "-out", csr, "-subj", "/O=Haven Test Origins/CN=%s" % names[0],
                "-addext", "subjectAltName=" + san)
        dates = (["-startdate", "20200101000000Z", "-enddate", "20200102000000Z"] if expired
                 else ["-days", "30"])
        openssl("ca", "-batch", "-config", self.conf, "-extensions", "leaf", "-notext",
                "-in", csr, "-out", cert, *dates)
        return cert, key

    def self_signed(self, stem, name):
        """(cert, key): a self-signed certificate for name."""
        key, cert = self.dir / ("%s.key" % stem), self.dir / ("%s.pem" % stem)
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", key, "-out", cert, "-days", "30", "-subj", "/CN=%s" % name,
                "-addext", "subjectAltName=DNS:%s" % name)
        return cert, key


class _TLSServer(_Server):
    """proxyenv's threading server; each accepted connection does its TLS handshake in its own
    thread (a client that never speaks TLS cannot stall the others)."""

    def finish_request(self, request, client_address):
        origin = self.origin
        try:
            request.settimeout(WAIT)
            if origin.gated:
                # Hold the handshake: wait for the client's hello, say so, wait for the gate.
                request.recv(1, socket.MSG_PEEK)
                origin.hello_waiting.set()
                origin.handshake_gate.wait(WAIT)
            tls = self.tls_context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return
        with origin.lock:
            origin.resumed.append(tls.session_reused)
        try:
            super().finish_request(tls, client_address)
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        pass  # handshake failures and resets are the tests' business, not noise


class TLSOrigin(Origin):
    """proxyenv.Origin over TLS with the given certificate and key; .snis: server names seen,
    .resumed: for each handshake, whether the client resumed an earlier session.

    gated: each connection's TLS handshake waits, once the client's hello has arrived (the
    event hello_waiting is then set), until the event handshake_gate is set."""

    def __init__(self, cert, key, name="tls-origin", gated=False):
        self.name = name
        self.gated = gated
        self.hello_waiting = threading.Event()
        self.handshake_gate = threading.Event()
        self.seen = []
        self.peers = []
        self.snis = []
        self.resumed = []  # per handshake: was it a resumed session?
        self.open = 0
        self.lock = threading.Lock()
        self.gate = threading.Event()
        self.gate_reached = threading.Event()
        self.slow_started = threading.Event()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert), str(key))
        ctx.set_alpn_protocols(["http/1.1"])

        def sni(sslobj, server_name, context):
            with self.lock:
                self.snis.append(server_name)
        ctx.sni_callback = sni
        self.httpd = _TLSServer(("127.0.0.1", 0), OriginHandler)
        self.httpd.tls_context = ctx
        self.httpd.origin = self
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.handshake_gate.set()
        super().stop()


def connect_tunnel(proxy_port, host, port):
    """A socket to the proxy after `CONNECT host:port` was answered; (sock, status, head)."""
    sock = socket.create_connection(("127.0.0.1", proxy_port), timeout=WAIT)
    authority = "%s:%d" % (host, port)
    sock.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (authority, authority)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        data = sock.recv(1)  # byte by byte: nothing after the head may be consumed here
        if not data:
            sock.close()
            raise EOFError("the proxy closed the connection during CONNECT: %r" % head)
        head += data
    status = int(head.split(b" ", 2)[1])
    return sock, status, head.decode("latin-1")


def tunnel(proxy_port, host, port, ctx, server_hostname=None):
    """TLS through the proxy to host:port, with ctx; server_hostname is the SNI (None: no SNI)."""
    sock, status, head = connect_tunnel(proxy_port, host, port)
    if status != 200:
        sock.close()
        raise AssertionError("CONNECT %s:%d refused: %s" % (host, port, head))
    try:
        return ctx.wrap_socket(sock, server_hostname=server_hostname)
    except BaseException:
        sock.close()
        raise


def http_over(tls, host, path):
    """One GET over an open TLS socket (path None: the request was sent already); (status,
    head text, body), reading to the close (status 0: closed without an answer)."""
    if path is not None:
        tls.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                     % (path, host)).encode())
    data = b""
    while True:
        try:
            chunk = tls.recv(65536)
        except (ssl.SSLEOFError, ConnectionResetError):
            break
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return status, head.decode("latin-1"), body


def _tcp_queues(local_port, remote_port):
    """(tx_queue, rx_queue) of the IPv4 loopback TCP socket local_port -> remote_port, or None."""
    want = ("0100007F:%04X" % local_port, "0100007F:%04X" % remote_port)
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if (fields[1], fields[2]) == want:
                tx, rx = fields[4].split(":")
                return int(tx, 16), int(rx, 16)
    return None


def wait_read_by_peer(sock, wait=WAIT):
    """Wait until everything sent on sock (a loopback TCP socket) has been read by the process
    at the other end: our send queue and its receive queue are both empty (/proc/net/tcp).
    Returns False if that does not happen within wait (a hang guard)."""
    mine, theirs = sock.getsockname()[1], sock.getpeername()[1]
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        ours, peer = _tcp_queues(mine, theirs), _tcp_queues(theirs, mine)
        if ours is not None and peer is not None and ours[0] == 0 and peer[1] == 0:
            return True
        time.sleep(0.01)
    return False


# ---------------------------------------------------------------------------- process memory

# Mappings bigger than this are skipped: under AddressSanitizer they are its shadow memory
# (terabytes of address space, one byte per eight of the process's, never its data).
MEMORY_REGION_MAX = 1 << 30


def memory_regions(pid):
    """[(start, end, perms, name)] of the readable mappings of process pid."""
    out = []
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            parts = line.split(None, 5)
            start, end = (int(x, 16) for x in parts[0].split("-"))
            name = parts[5].strip() if len(parts) > 5 else ""
            if "r" not in parts[1] or name in ("[vvar]", "[vsyscall]", "[vvar_vclock]"):
                continue
            out.append((start, end, parts[1], name))
    return out


def scan_memory(pid, needles, chunk=1 << 20):
    """Search the readable memory of process pid for each of needles (bytes).

    Returns (found, scanned, skipped): found maps each needle found to the name of the first
    mapping that holds it ("" for anonymous memory); scanned is the number of bytes read;
    skipped lists mappings too large to read (MEMORY_REGION_MAX). Raises PermissionError (or
    another OSError) when /proc/PID/mem cannot be opened."""
    found, scanned, skipped = {}, 0, []
    overlap = max(len(n) for n in needles) - 1
    with open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
        for start, end, perms, name in memory_regions(pid):
            if end - start > MEMORY_REGION_MAX:
                skipped.append((start, end, perms, name))
                continue
            tail = b""
            pos = start
            while pos < end:
                n = min(chunk, end - pos)
                try:
                    mem.seek(pos)
                    data = mem.read(n)
                except (OSError, ValueError, OverflowError):
                    data = b""
                if not data:
                    tail = b""
                    pos += n
                    continue
                scanned += len(data)
                window = tail + data
                for needle in needles:
                    if needle not in found and needle in window:
                        found[needle] = name
                tail = window[-overlap:] if overlap else b""
                pos += len(data)
    return found, scanned, skipped
