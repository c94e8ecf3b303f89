#!/usr/bin/python3
"""Helpers of bench/tls/run: HTTPS inspection, haven serve beside E2Guardian 5.3 (MITM).

    tls.py measure --work W ...       start everything, measure, write W/results.txt
    tls.py report RESULTS OUT         write the bench/tls section: into OUT between the
                                      markers if OUT has them, else appended to OUT (a new
                                      OUT holds the section alone)

measure prints progress on standard error and writes key=value lines. Everything
listens on 127.0.0.1 (the origin on port 443, the proxies on ports the kernel picks);
nothing is fetched from outside the machine.
"""

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

# Helpers shared with bench/proxy (same machine, same conventions).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "proxy"))
from proxy import fnum, free_port, lat, proc_status  # noqa: E402

# The origin's name and port: SNI cannot be an IP literal, and E2Guardian 5.3 inspects a
# CONNECT only when its port is 443 (ConnectionHandler.cpp: ismitmcandidate needs
# header.port == 443); any other port is tunnelled without inspection.
ORIGIN_NAME = "localhost"
ORIGIN_PORT = 443
TARGET = "%s:%d" % (ORIGIN_NAME, ORIGIN_PORT)
BODY = 1024
SCHOOL = "Bench School"
# (case, mode, connections): inspected keep-alive connections, and a new inspected
# connection (CONNECT + full handshake) per request.
CASES = [("reuse16", "reuse", 16), ("reuse256", "reuse", 256), ("new16", "new", 16)]
ORIGIN_CASES = [("reuse16", "reuse", 16), ("new16", "new", 16)]
PEERS = ("haven", "e2g")


def say(msg):
    sys.stderr.write("bench/tls: %s\n" % msg)
    sys.stderr.flush()


def die(msg):
    say(msg)
    sys.exit(1)


# --------------------------------------------------------------------------------------------
# Processes


def port_free(port):
    """Whether nothing listens on 127.0.0.1:port (connections in TIME_WAIT do not count:
    nginx sets SO_REUSEADDR too)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        s.listen(1)
        return True
    except OSError:
        return False
    finally:
        s.close()


def wait_port(port, proc, limit=60.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if proc and not proc.alive():
            return None
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
            return time.monotonic() - t0
        except OSError:
            time.sleep(0.05)
    return None


class Proc:
    """A process we started, pinned to CPUs, stopped by its own PID."""

    def __init__(self, name, cmd, cpus, log, cwd=None):
        self.name = name
        self.logpath = log
        self.log = open(log, "ab")
        self.p = subprocess.Popen(["taskset", "-c", str(cpus)] + cmd, stdout=self.log,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd)
        self.pid = self.p.pid  # taskset execs the command: same PID

    def alive(self):
        return self.p.poll() is None

    def tail(self, n=5):
        try:
            lines = Path(self.logpath).read_text(errors="replace").strip().splitlines()
            return " / ".join(lines[-n:])
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, grace=3.0):
        if self.p.poll() is None:
            try:
                os.kill(self.pid, sig)
                self.p.wait(grace)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)  # E2Guardian -N may ignore SIGTERM
                self.p.wait()
        self.log.close()


def children():
    """{ppid: [pid, ...]} of every process."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                rest = f.read().rsplit(")", 1)[1].split()
            out.setdefault(int(rest[1]), []).append(int(d))
        except (OSError, IndexError):
            pass
    return out


def tree(pid):
    """pid and its descendants (haven's signer process, E2Guardian's helpers)."""
    kids = children()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def tree_kb(pid, field="VmRSS"):
    total = 0
    for p in tree(pid):
        try:
            total += int(proc_status(p).get(field, "0 kB").split()[0])
        except (OSError, ValueError):
            pass
    return total


def tree_threads(pid):
    total = 0
    for p in tree(pid):
        try:
            total += int(proc_status(p).get("Threads", "0"))
        except (OSError, ValueError):
            pass
    return total


def cpu_list(text):
    """The CPUs of a taskset list such as "0", "0,2" or "0-3"."""
    out = []
    for part in str(text).split(","):
        if "-" in part:
            x, y = part.split("-", 1)
            out += list(range(int(x), int(y) + 1))
        elif part.strip():
            out.append(int(part))
    return out


class Watch:
    """While a run lasts: the peak RSS of a process tree, sampled every 0.2 s. (The CPU
    figures come from bench_tlsload, which reads them at the edges of its window.)"""

    def __init__(self, pid):
        self.pid = pid
        self.peak = 0
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self.loop, daemon=True)

    def loop(self):
        while not self.stop_ev.is_set():
            self.peak = max(self.peak, tree_kb(self.pid))
            self.stop_ev.wait(0.2)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *exc):
        self.stop_ev.set()
        self.t.join()
        return False


def pid_ticks():
    """{pid: (name, utime + stime)} of every user process (kernel threads, the children
    of kthreadd, are left out: ksoftirqd and the like do the benchmark's own network work)."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                text = f.read()
            name = text[text.index("(") + 1:text.rindex(")")]
            rest = text.rsplit(")", 1)[1].split()
            if int(d) == 2 or int(rest[1]) == 2:
                continue
            out[int(d)] = (name, int(rest[11]) + int(rest[12]))
        except (OSError, ValueError, IndexError):
            pass
    return out


def others_cpu(p0, p1, ours, seconds):
    """Percent of a CPU that processes not in ours used between two pid_ticks() samples
    (processes that lived through both), and the busiest of them."""
    hz = os.sysconf("SC_CLK_TCK")
    total, procs = 0.0, []
    for pid, (name, t) in p1.items():
        if pid in ours or pid not in p0:
            continue
        pct = 100.0 * (t - p0[pid][1]) / hz / max(0.001, seconds)
        total += pct
        if pct >= 5:
            procs.append((pct, name))
    return total, sorted(procs, reverse=True)


def cpu_busy():
    """{cpu: (busy, total)} ticks from /proc/stat."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            t = line.split()
            if re.match(r"^cpu\d+$", t[0]):
                v = [int(x) for x in t[1:9]] + [0] * (8 - len(t[1:9]))
                out[int(t[0][3:])] = (sum(v) - v[3] - v[4] - v[7], sum(v))
    return out


def other_load(seconds, ours):
    """What else runs on the machine: each CPU's busy share over a few seconds, and the
    processes (not ours) that used more than 5% of a CPU."""
    p0, c0 = pid_ticks(), cpu_busy()
    time.sleep(seconds)
    p1, c1 = pid_ticks(), cpu_busy()
    hz = os.sysconf("SC_CLK_TCK")
    busy = {c: 100.0 * (c1[c][0] - c0[c][0]) / max(1, c1[c][1] - c0[c][1]) for c in c1 if c in c0}
    procs, mine = [], 0.0
    for pid, (name, t) in p1.items():
        if pid not in p0:
            continue
        pct = 100.0 * (t - p0[pid][1]) / hz / seconds
        if pid in ours:
            mine += pct
        elif pct >= 5:
            procs.append((pct, name))
    return busy, sorted(procs, reverse=True), mine


def kv_line(text):
    out = {}
    for tok in text.split():
        if "=" in tok:
            k, v = tok.split("=", 1)
            out[k] = v
    return out


def http_get(port, path, timeout=5.0):
    """GET path from the proxy itself (origin form); the body as text, or None."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n"
                   % (path, port)).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
    except OSError:
        return None
    head, _, body = data.partition(b"\r\n\r\n")
    if not re.match(rb"HTTP/1\.\d 200", head):
        return None
    if re.search(rb"(?im)^transfer-encoding:\s*chunked", head):
        out, rest = b"", body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            n = int(size_line.split(b";")[0] or b"0", 16)
            if n == 0:
                break
            out += rest[:n]
            rest = rest[n + 2:]
        body = out
    return body.decode("utf-8", "replace")


# --------------------------------------------------------------------------------------------
# Certificates (openssl command line)


def openssl(*args):
    out = subprocess.run(["openssl"] + list(args), capture_output=True, text=True)
    if out.returncode != 0:
        die("openssl %s failed: %s" % (" ".join(args[:2]), out.stderr.strip()))
    return out.stdout


def key_args(kind):
    return (["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if kind == "ec"
            else ["-newkey", "rsa:2048"])


def make_ca(d, cn, kind, days=30):
    """A CA (cert.pem, key.pem) in d, shaped like haven's (CA:TRUE, pathlen:0)."""
    d.mkdir(parents=True, exist_ok=True)
    openssl("req", "-x509", *key_args(kind), "-nodes", "-keyout", str(d / "ca.key"),
            "-out", str(d / "ca.pem"), "-days", str(days), "-subj", "/O=%s/CN=%s" % (SCHOOL, cn),
            "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-addext", "subjectKeyIdentifier=hash")
    os.chmod(d / "ca.key", 0o600)


def make_origin_certs(d):
    """The origin test CA and its leaf for localhost, EC P-256."""
    d.mkdir(parents=True, exist_ok=True)
    openssl("req", "-x509", *key_args("ec"), "-nodes", "-keyout", str(d / "origin-ca.key"),
            "-out", str(d / "origin-ca.pem"), "-days", "30",
            "-subj", "/O=bench origin/CN=bench-tls origin test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", "-new", *key_args("ec"), "-nodes", "-keyout", str(d / "leaf.key"),
            "-out", str(d / "leaf.csr"), "-subj", "/CN=%s" % ORIGIN_NAME)
    ext = d / "leaf.ext"
    ext.write_text("subjectAltName=DNS:%s\nbasicConstraints=critical,CA:FALSE\n"
                   "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
                   % ORIGIN_NAME)
    openssl("x509", "-req", "-in", str(d / "leaf.csr"), "-CA", str(d / "origin-ca.pem"),
            "-CAkey", str(d / "origin-ca.key"), "-CAcreateserial", "-days", "30",
            "-out", str(d / "leaf.pem"), "-extfile", str(ext))


def page(n):
    """An HTML page of exactly n bytes."""
    head = "<!doctype html><html><head><title>bench/tls</title></head><body>\n"
    tail = "</body></html>\n"
    line = ("<p>The quick brown fox jumps over the lazy dog; a line of filler text for the "
            "inspection benchmark.</p>\n")
    body = ""
    while len(head) + len(body) + len(line) + len(tail) <= n:
        body += line
    s = head + body
    s += "x" * (n - len(s) - len(tail)) + tail
    assert len(s) == n
    return s


def nginx_conf(w, d):
    return """# bench/tls origin: one nginx process, no master, no access log, HTTPS on
# {name}:{port} with a certificate from the origin test CA.
daemon off;
master_process off;
worker_processes 1;
pid {w}/nginx.pid;
error_log {w}/error.log warn;
worker_rlimit_nofile 20000;
events {{ worker_connections 16384; multi_accept on; }}
http {{
    access_log off;
    client_body_temp_path {w}/tmp/body;
    proxy_temp_path {w}/tmp/proxy;
    fastcgi_temp_path {w}/tmp/fastcgi;
    uwsgi_temp_path {w}/tmp/uwsgi;
    scgi_temp_path {w}/tmp/scgi;
    default_type text/html;
    tcp_nodelay on;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    open_file_cache max=16;
    server {{
        listen 127.0.0.1:{port} ssl backlog=8192;
        server_name {name};
        ssl_certificate {d}/leaf.pem;
        ssl_certificate_key {d}/leaf.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        root {w}/www;
    }}
}}
""".format(w=w, d=d, port=ORIGIN_PORT, name=ORIGIN_NAME)


# --------------------------------------------------------------------------------------------
# E2Guardian


def set_opt(text, key, val):
    """Set `key = val` in an E2Guardian configuration: replace the first (maybe commented)
    line that sets it, or append one."""
    pat = re.compile(r"^#?[ \t]*%s[ \t]*=.*$" % re.escape(key), re.M)
    if pat.search(text):
        return pat.sub(lambda m: "%s = %s" % (key, val), text, count=1)
    return text.rstrip("\n") + "\n%s = %s\n" % (key, val)


def e2g_conf(w, etc, lists, port, tport, now):
    """Copy /etc/e2guardian/*.conf to w/e2g with our changes; returns the changes."""
    d = w / "e2g"
    q = lambda p: "'%s'" % p
    main = [
        # as bench/proxy
        ("filterip", "127.0.0.1"),
        ("filterports", str(port)),
        ("transparenthttpsport", str(tport)),    # another free port (it is bound)
        ("httpworkers", "1100"),                  # thread per connection: >= 256 + spare
        ("weightedphrasemode", "0"),              # no phrase / content scanning
        ("loglocation", q(d / "log" / "access.log")),
        ("dstatlocation", q(d / "log" / "dstats.log")),
        ("pidfilename", q(d / "e2guardian.pid")),
        # SSL MITM
        ("enablessl", "on"),
        ("sslcertificatepath", q(d / "upstream-ca")),  # a c_rehash'd directory (CApath)
        ("cacertificatepath", q(d / "ca.pem")),
        ("caprivatekeypath", q(d / "ca.key")),
        ("certprivatekeypath", q(d / "cert.key")),     # one key for every minted leaf
        ("generatedcertpath", q("%s/" % (d / "generatedcerts"))),
        # The default validity is 2014-12-06 + 10 years: expired. From an hour ago.
        ("generatedcertstart", str(now - 3600)),
        ("generatedcertend", str(now + 30 * 86400)),
    ]
    text = (Path(etc) / "e2guardian.conf").read_text()
    changes = []
    for k, v in main:
        text = set_opt(text, k, v)
        changes.append("%s = %s" % (k, v))
    (d / "e2guardian.conf").write_text(text)
    grp = (Path(etc) / "e2guardianf1.conf").read_text()
    for name in ("bannedsitelist", "bannedsiteiplist", "bannedurllist"):
        old = "path=%s/lists/%s'" % (etc, name)
        if old not in grp:
            die("%s/e2guardianf1.conf has no %s line to point at our list" % (etc, name))
        grp = grp.replace(old, "path=%s/%s'" % (lists, name))
    for k, v in (("sslmitm", "on"), ("mitmcheckcert", "on")):
        grp = set_opt(grp, k, v)
        changes.append("%s = %s (e2guardianf1.conf)" % (k, v))
    (d / "e2guardianf1.conf").write_text(grp)
    return changes


def count_files(d):
    n = 0
    for _, _, files in os.walk(d):
        n += len(files)
    return n


# --------------------------------------------------------------------------------------------
# Measuring


class Bench:
    def __init__(self, a):
        self.a = a
        self.work = Path(a.work)
        self.res = open(self.work / "results.txt", "a")
        self.procs = []
        self.cpu, self.lcpu = a.cpu, a.load_cpu
        self.threads = max(1, len(cpu_list(a.load_cpu))) if a.load_threads <= 0 \
            else a.load_threads
        self.sut = {}
        self.retries = 0

    def put(self, k, v):
        self.res.write("%s=%s\n" % (k, v))
        self.res.flush()

    def start(self, name, cmd, cpus, cwd=None):
        p = Proc(name, cmd, cpus, self.work / "logs" / (name + ".log"), cwd=cwd)
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in reversed(self.procs):
            p.stop()
        self.procs = []

    def window(self, r):
        """The loadgen's figures of its measuring window: the proxy's CPU use and time per
        request, each CPU's load and the worst steal."""
        r["sut_cpu"] = float(r.get("proxy_cpu_pct", 0))
        r["cpu_us"] = 1e6 * float(r.get("proxy_cpu_s", 0)) / max(1, int(r.get("requests", 0)))
        r["busy_load"] = statistics.mean(float(r.get("cpu%d_busy" % c, 0))
                                         for c in cpu_list(self.lcpu))
        r["busy_sut"] = float(r.get("cpu%s_busy" % self.cpu, 0))
        # The load side's own use of its CPUs: the generator and the origin.
        r["own_load"] = (float(r.get("cpu_pct", 0)) + float(r.get("origin_cpu_pct", 0))) \
            / max(1, len(cpu_list(self.lcpu)))
        r["steal"] = max([float(v) for key, v in r.items() if re.match(r"cpu\d+_steal$", key)]
                         or [0.0])
        return r

    def loadgen(self, mode, conns, seconds, ca, proxy_port=None, warmup=0.0, check=True,
                watch=()):
        """One bench_tlsload run on the load CPU(s): (exit status, {key: value}, stderr)."""
        via = ["--proxy", "127.0.0.1:%d" % proxy_port] if proxy_port else \
            ["--direct", "127.0.0.1:%d" % ORIGIN_PORT]
        cmd = ["taskset", "-c", str(self.lcpu), self.a.loadgen, "--" + mode] + via + [
            "--target", TARGET, "--ca", str(ca), "--conns", str(conns),
            "--seconds", str(seconds), "--warmup", str(warmup), "--path", "/1k",
            "--threads", str(min(self.threads, conns))]
        for pid in watch:
            cmd += ["--watch", str(pid)]
        if proxy_port:
            cmd += ["--watch-origin", str(self.origin.pid)]
        out = subprocess.run(cmd, capture_output=True, text=True)
        with open(self.work / "logs" / "loadgen.log", "a") as f:
            f.write("$ %s\n%s%s\n" % (" ".join(cmd), out.stdout, out.stderr))
        r = kv_line(out.stdout)
        if check and out.returncode != 0:
            die("bench_tlsload --%s (%d connections) failed: %s"
                % (mode, conns, out.stderr.strip() or "exit %d" % out.returncode))
        return out.returncode, r, out.stderr.strip()

    # ----------------------------------------------------------------------------------------

    def setup(self):
        a, w = self.a, self.work
        for sub in ("logs", "origin/www", "origin/tmp", "e2g/log", "e2g/upstream-ca",
                    "e2g/generatedcerts", "haven-var", "pki"):
            (w / sub).mkdir(parents=True, exist_ok=True)
        if not port_free(ORIGIN_PORT):
            die("127.0.0.1:%d is in use: the origin must listen there, because E2Guardian "
                "inspects CONNECT only to port 443 (any other port is tunnelled); stop what "
                "holds it (ss -ltnp 'sport = :443')" % ORIGIN_PORT)
        self.ports = {k: free_port() for k in ("haven", "e2g", "e2g_tls")}
        if len(set(self.ports.values())) != len(self.ports):
            die("the kernel gave the same free port twice; run again")
        for k, v in self.ports.items():
            self.put("port_" + k, v)

        say("certificates: origin test CA and leaf; the inspection CA")
        make_origin_certs(w / "pki")
        self.origin_ca = w / "pki" / "origin-ca.pem"
        # The inspection CA: haven's own (`haven ca init`), used by E2Guardian too.
        self.haven_ok, self.haven_why = True, ""
        cadir = w / "haven-ca"
        cmd = [a.haven, "ca", "init", "--dir", str(cadir), "--name", SCHOOL]
        if a.key == "rsa":
            cmd.append("--rsa")
        out = subprocess.run(cmd, capture_output=True, text=True)
        (w / "logs" / "haven-ca-init.log").write_text(out.stdout + out.stderr)
        if out.returncode == 0 and (cadir / "ca.pem").exists() and (cadir / "ca.key").exists():
            self.ca_pem, self.ca_key = cadir / "ca.pem", cadir / "ca.key"
            self.put("ca_source", "haven ca init%s" % (" --rsa" if a.key == "rsa" else ""))
        else:
            first = (out.stderr or out.stdout).strip().splitlines()
            self.haven_ok = False
            self.haven_why = "`haven ca init` failed: %s" % (first[0] if first else
                                                              "exit %d" % out.returncode)
            make_ca(w / "pki" / "inspection", "%s bench inspection CA" % SCHOOL,
                    "rsa" if a.key == "rsa" else "ec")
            self.ca_pem = w / "pki" / "inspection" / "ca.pem"
            self.ca_key = w / "pki" / "inspection" / "ca.key"
            self.put("ca_source", "openssl (haven ca init unavailable)")
        self.put("ca_subject", openssl("x509", "-in", str(self.ca_pem), "-noout", "-subject")
                 .strip().replace("subject=", "").strip())
        self.put("ca_key", openssl("x509", "-in", str(self.ca_pem), "-noout", "-text")
                 .split("Public Key Algorithm:")[1].splitlines()[0].strip())

        # E2Guardian: the same CA; one leaf key of the kind haven uses; the origin test CA
        # as its only trust anchor for origin certificates, in a hashed directory.
        d = w / "e2g"
        shutil.copy(self.ca_pem, d / "ca.pem")
        shutil.copy(self.ca_key, d / "ca.key")
        shutil.copy(self.origin_ca, d / "upstream-ca" / "origin-ca.pem")
        openssl("rehash", str(d / "upstream-ca"))
        kind = "ec" if a.key == "ec" else "rsa"
        openssl("req", "-new", *key_args(kind), "-nodes", "-keyout", str(d / "cert.key"),
                "-out", str(d / "cert.csr"), "-subj", "/CN=unused")
        self.put("e2g_cert_key", "EC P-256" if kind == "ec" else "RSA 2048")
        now = int(time.time())
        changes = e2g_conf(w, a.e2g_etc, a.e2g_lists, self.ports["e2g"], self.ports["e2g_tls"],
                           now)
        self.put("e2g_changes", "; ".join(changes))
        os.chmod(d / "log", 0o777)  # E2Guardian drops to its own user
        subprocess.run(["chown", "-R", "e2guardian:", str(d / "generatedcerts"),
                        str(d / "ca.key"), str(d / "cert.key")], check=False)
        for f in ("ca.key", "cert.key"):
            os.chmod(d / f, 0o600)
        os.chmod(d / "generatedcerts", 0o700)

        # haven: one worker, logs on, a resolver that answers nothing (localhost comes from
        # /etc/hosts), the inspection CA and the origin test CA as the only trust anchor.
        (w / "haven.conf").write_text(
            "# bench/tls: haven serve on one core, inspecting\n"
            "listen 127.0.0.1:%d\nworkers 1\npolicy %s\ndatabase %s\ndata-dir %s\n"
            "access-log access.log.json\nresolver 127.0.0.1:1\ntimeout-drain 1s\n"
            "ca-dir %s\nupstream-ca %s\n"
            % (self.ports["haven"], a.policy, a.db, w / "haven-var",
               self.ca_pem.parent, self.origin_ca))
        (w / "origin" / "www" / "1k").write_text(page(BODY))
        (w / "origin" / "nginx.conf").write_text(nginx_conf(w / "origin", w / "pki"))

    def start_origin(self):
        w = self.work
        self.origin = self.start("nginx", ["nginx", "-c", str(w / "origin" / "nginx.conf"),
                                           "-p", str(w / "origin")], self.lcpu)
        if wait_port(ORIGIN_PORT, self.origin, 20) is None:
            die("nginx did not start: %s" % self.origin.tail())
        rc, r, err = self.loadgen("reuse", 1, 0.5, self.origin_ca)
        if r.get("body_mean") != str(BODY) or r.get("non200") != "0":
            die("the origin answers /1k wrongly: %s" % r)
        # The origin's certificate must not verify against the inspection CA: then a
        # certificate that does, through a proxy, was minted by the proxy.
        rc, r, err = self.loadgen("reuse", 1, 0.5, self.ca_pem, check=False)
        if rc != 3:
            die("the origin's certificate verifies against the inspection CA (exit %d): the "
                "test cannot tell inspection from a tunnel" % rc)
        self.put("origin_vs_inspection_ca", err.splitlines()[0] if err else "refused")

    def origin_alone(self):
        a = self.a
        for case, mode, conns in ORIGIN_CASES:
            say("origin alone (bench_tlsload and nginx on CPU %s): %s" % (self.lcpu, case))
            runs = []
            for _ in range(a.runs):
                while True:
                    _, r, _ = self.timed_loadgen(mode, conns, a.origin_seconds,
                                                 self.origin_ca,
                                                 warmup=a.warmup if mode == "new" else 0,
                                                 watch=[self.origin.pid])
                    self.window(r)
                    # Here the origin is the watched process: it is load-side work.
                    r["own_load"] = (float(r.get("cpu_pct", 0)) + r["sut_cpu"]) \
                        / max(1, len(cpu_list(self.lcpu)))
                    if not self.disturbed("origin %s" % case, r):
                        break
                runs.append(r)
            self.summarise("origin_%s" % case, runs, mode)

    def start_haven(self):
        if not self.haven_ok:
            return None
        a, w = self.a, self.work
        p = self.start("haven", [a.haven, "serve", "--config", str(w / "haven.conf")], self.cpu)
        t = wait_port(self.ports["haven"], p, 60)
        if t is None:
            self.haven_ok = False
            self.haven_why = "`haven serve` with `ca-dir`, `upstream-ca` and `inspect on` " \
                             "did not start: %s" % (p.tail(3) or "no output")
            p.stop()
            return None
        self.put("haven_ready_s", "%.3f" % t)
        return p

    def start_e2g(self):
        w = self.work
        pidfile = w / "e2g" / "e2guardian.pid"
        if pidfile.exists():
            pidfile.unlink()  # it refuses to start while its pid file exists
        p = self.start("e2g", ["e2guardian", "-N", "-c", str(w / "e2g" / "e2guardian.conf")],
                       self.cpu)
        t = wait_port(self.ports["e2g"], p, 120)
        if t is None:
            die("E2Guardian did not start: %s (see %s)" % (p.tail(3), p.logpath))
        self.put("e2g_ready_s", "%.3f" % t)
        return p

    def probe(self, sut):
        """One inspected connection: the certificate must be the inspection CA's (the
        load generator exits 3 otherwise), the page whole. Returns None or the reason."""
        port = self.ports[sut]
        rc, r, err = 1, {}, ""
        for _ in range(3):
            rc, r, err = self.loadgen("reuse", 1, 0.5, self.ca_pem, port, check=False)
            if rc == 0:
                break
            time.sleep(1.0)
        if rc == 3:
            return "the certificate is not from the inspection CA (%s)" % err.splitlines()[0]
        if rc != 0:
            return "bench_tlsload failed: %s" % (err.splitlines()[-1] if err else "exit %d" % rc)
        if r.get("non200") != "0" or r.get("body_mean") != str(BODY):
            return "the page came back wrong: %s responses not 200, %s bytes" % (
                r.get("non200"), r.get("body_mean"))
        for k in ("tls", "cipher", "group", "leaf_key", "issuer", "subject"):
            self.put("%s_%s" % (sut, k), r.get(k, "?"))
        return None

    def metrics(self):
        """haven's leaf-cache counters, or None when it does not export them."""
        text = http_get(self.ports["haven"], "/metrics")
        if text is None:
            return None
        out = {}
        for name in ("haven_tls_leaf_cache_hits_total", "haven_tls_leaf_cache_misses_total"):
            vals = re.findall(r"(?m)^%s(?:\{[^}]*\})?\s+([0-9.eE+]+)\s*$" % name, text)
            if vals:
                out[name] = sum(float(v) for v in vals)  # summed over labelled series
        return out if len(out) == 2 else None

    def quiet(self, when, wait=0.0):
        """Record what else loads the CPUs (waiting up to wait seconds for them to calm
        down); warn when the proxy's or the load CPU is busy."""
        ours = self.ours()
        cpus = sorted(set(cpu_list(self.lcpu) + cpu_list(self.cpu)))
        t0 = time.monotonic()
        while True:
            busy, procs, mine = other_load(2.0, ours)
            if all(busy.get(c, 0) <= 20 for c in cpus) or time.monotonic() - t0 >= wait:
                break
            say("CPUs busy with other processes (%s): waiting up to %.0f s more for them" % (
                ", ".join("%s %.0f%%" % (n, pct) for pct, n in procs[:3]) or "short-lived",
                wait - (time.monotonic() - t0)))
            time.sleep(3.0)
        self.put("other_wait_%s_s" % when, "%.0f" % (time.monotonic() - t0 - 2.0))
        self.put("other_load_%s" % when, ", ".join("CPU %d %.0f%%" % (c, busy.get(c, 0))
                                                   for c in cpus))
        self.put("other_procs_%s" % when, ", ".join("%s %.0f%%" % (n, pct)
                                                    for pct, n in procs[:5]) or "none")
        self.put("ours_idle_%s" % when, "%.0f" % mine)
        hot = [c for c in cpus if busy.get(c, 0) > 20]
        if hot:
            say("warning: %s busy %s the runs: other processes (%s) take CPU time from the "
                "proxy or the load generator, so the figures are low" % (
                    ", ".join("CPU %d %.0f%%" % (c, busy[c]) for c in hot), when,
                    ", ".join("%s %.0f%%" % (n, pct) for pct, n in procs[:3])
                    or "short-lived ones; the idle proxies and origin used %.0f%%" % mine))

    def ours(self):
        out = {os.getpid()}
        for p in self.procs:
            out.update(tree(p.pid))
        return out

    def disturbed(self, what, r):
        """Whether other user processes used more than 15% of a CPU during the run
        (r["others"], from others_cpu); then the run is done again, at most a.retries times
        in all."""
        if r["others"] <= 15:
            return False
        bad = "%.0f%% of a CPU: %s" % (r["others"], ", ".join(
            "%s %.0f%%" % (n, pct) for pct, n in r["others_top"][:3]) or "many small ones")
        if self.retries >= self.a.retries:
            self.put("disturbed_kept", "%s (%s)" % (what, bad))
            return False
        self.retries += 1
        self.put("disturbed_retried", "%s (%s)" % (what, bad))
        say("%s: other processes used %s during the run; running it again" % (what, bad))
        time.sleep(3.0)
        return True

    def timed_loadgen(self, *args, **kw):
        """loadgen(), with what other processes used meanwhile in r["others"]."""
        ours = self.ours()
        p0, t0 = pid_ticks(), time.monotonic()
        rc, r, err = self.loadgen(*args, **kw)
        p1 = pid_ticks()
        r["others"], r["others_top"] = others_cpu(p0, p1, ours, time.monotonic() - t0)
        return rc, r, err

    def summarise(self, key, runs, mode):
        """Median run (by req/s) and the spread of each figure."""
        fig = "hs_per_s" if mode == "new" else "rps"
        rs = sorted(runs, key=lambda r: float(r.get(fig, 0)))
        med = rs[len(rs) // 2]
        self.put(key + "_rps", "%.0f" % float(med["rps"]))
        self.put(key + "_rps_all", ",".join("%.0f" % float(r["rps"]) for r in runs))
        for f in ("hs_per_s", "hs_mean_us", "hs_p50_us", "hs_p99_us", "req_p50_us",
                  "req_p99_us", "conn_p50_us", "conn_p99_us", "setup_hs_p50_us",
                  "setup_hs_p99_us", "cpu_pct", "origin_cpu_pct"):
            self.put("%s_%s" % (key, f), med.get(f, "0"))
        self.put(key + "_hs_per_s_all", ",".join("%.0f" % float(r["hs_per_s"]) for r in runs))
        self.put(key + "_hs_p99_us_all", ",".join(r["hs_p99_us"] for r in runs))
        self.put(key + "_req_p99_us_all", ",".join(r["req_p99_us"] for r in runs))
        for f in ("reconnects", "errors", "timeouts", "non200", "requests", "handshakes"):
            self.put("%s_%s" % (key, f), sum(int(r.get(f, 0)) for r in runs))
        for f in ("busy_load", "busy_sut", "sut_cpu", "steal", "cpu_us", "own_load", "others"):
            if f in med:
                self.put("%s_%s" % (key, f), "%.1f" % statistics.median(r[f] for r in runs))

    def measure(self, peers):
        a = self.a
        res = {}
        for case, mode, conns in CASES:
            for run in range(a.runs):
                for sut in peers:
                    say("%s %s, run %d/%d" % (sut, case, run + 1, a.runs))
                    p = self.sut[sut]
                    while True:
                        m0 = self.metrics() if sut == "haven" else None
                        with Watch(p.pid) as wt:
                            _, r, _ = self.timed_loadgen(
                                mode, conns, a.seconds, self.ca_pem, self.ports[sut],
                                warmup=a.warmup if mode == "new" else 0, watch=tree(p.pid))
                        if not p.alive():
                            die("%s died during the run: %s" % (sut, p.tail(3)))
                        self.window(r)
                        if not self.disturbed("%s %s" % (sut, case), r):
                            break
                    r["rss_after"] = tree_kb(p.pid)
                    r["rss_peak"] = wt.peak
                    if sut == "haven":
                        m1 = self.metrics()
                        if m0 and m1:
                            r["leaf_hits"] = (m1["haven_tls_leaf_cache_hits_total"]
                                              - m0["haven_tls_leaf_cache_hits_total"])
                            r["leaf_misses"] = (m1["haven_tls_leaf_cache_misses_total"]
                                                - m0["haven_tls_leaf_cache_misses_total"])
                    if int(r.get("non200", 0)):
                        die("%s %s: %s responses were not 200 (blocked or failed)"
                            % (sut, case, r["non200"]))
                    res.setdefault((sut, case, mode), []).append(r)
                    time.sleep(0.5)
        for (sut, case, mode), runs in res.items():
            key = "%s_%s" % (sut, case)
            self.summarise(key, runs, mode)
            self.put(key + "_rss_after_kb", max(r["rss_after"] for r in runs))
            self.put(key + "_rss_after_all", ",".join(str(r["rss_after"]) for r in runs))
            self.put(key + "_rss_peak_kb", max(r["rss_peak"] for r in runs))
            if all("leaf_hits" in r for r in runs):
                self.put(key + "_leaf_hits", "%.0f" % sum(r["leaf_hits"] for r in runs))
                self.put(key + "_leaf_misses", "%.0f" % sum(r["leaf_misses"] for r in runs))


def cmd_measure(a):
    b = Bench(a)
    t_start = time.monotonic()
    for key in ("cpu", "load_cpu", "runs", "seconds", "warmup", "origin_seconds", "key"):
        b.put(key, getattr(a, key))
    b.put("max_retries", a.retries)
    b.put("load_threads", b.threads)
    b.put("body", BODY)
    b.put("target", TARGET)
    try:
        b.setup()
        b.start_origin()
        b.origin_alone()
        say("starting E2Guardian on CPU %s" % b.cpu)
        b.sut["e2g"] = b.start_e2g()
        time.sleep(0.5)
        why = b.probe("e2g")
        if why:
            die("E2Guardian does not inspect: %s; see %s" % (why, b.work / "logs"))
        b.put("e2g_rss_start_kb", tree_kb(b.sut["e2g"].pid))
        b.put("e2g_threads_start", tree_threads(b.sut["e2g"].pid))
        peers = ["e2g"]
        say("starting haven on CPU %s" % b.cpu)
        hv = b.start_haven()
        if hv:
            time.sleep(0.3)
            why = b.probe("haven")
            if why:
                b.haven_ok = False
                b.haven_why = "haven does not inspect yet: %s" % why
                hv.stop()
            else:
                b.sut["haven"] = hv
                b.put("haven_rss_start_kb", tree_kb(hv.pid))
                b.put("haven_threads_start", tree_threads(hv.pid))
                b.put("haven_processes", len(tree(hv.pid)))
                peers = ["haven", "e2g"]
        if not b.haven_ok:
            say("haven: inspection not available yet (%s)" % b.haven_why)
            b.put("haven_unavailable", b.haven_why.replace("\n", " "))
        b.quiet("before", a.quiet_wait)
        b.measure(peers)
        b.quiet("after")
        for sut in peers:
            p = b.sut[sut]
            b.put("%s_hwm_kb" % sut, tree_kb(p.pid, "VmHWM"))
            b.put("%s_rss_end_kb" % sut, tree_kb(p.pid))
            b.put("%s_threads_end" % sut, tree_threads(p.pid))
        if "haven" in peers:
            m = b.metrics()
            if m:
                b.put("haven_leaf_hits_total", "%.0f" % m["haven_tls_leaf_cache_hits_total"])
                b.put("haven_leaf_misses_total", "%.0f" % m["haven_tls_leaf_cache_misses_total"])
            else:
                b.put("haven_leaf_metrics", "missing")
        b.put("e2g_generated_certs", count_files(b.work / "e2g" / "generatedcerts"))
        b.put("retries", b.retries)
        b.put("measure_s", "%.0f" % (time.monotonic() - t_start))
    finally:
        b.stop_all()


# --------------------------------------------------------------------------------------------
# Report

BEGIN, END = "<!-- bench/tls begin -->", "<!-- bench/tls end -->"


def load_kv(path):
    kv = {}
    for line in Path(path).read_text().splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            if k in ("disturbed_retried", "disturbed_kept") and k in kv:
                kv[k] += "; " + v
            else:
                kv[k] = v
    return kv


def mib(kb):
    return fnum(float(kb) / 1024, 1) + " MiB"


def e2g_changes(text):
    text = re.sub(r"(filterports|transparenthttpsport) = \d+", r"\1 = PORT", text)
    text = re.sub(r"generatedcertstart = \d+", "generatedcertstart = NOW - 1 h", text)
    text = re.sub(r"generatedcertend = \d+", "generatedcertend = NOW + 30 days", text)
    text = re.sub(r"'[^']*/build/bench/tls/", "'build/bench/tls/", text)
    return text.replace("; ", "`, `")


def cmd_report(a):
    k = load_kv(a.results)
    g = lambda key, d=0.0: float(k[key]) if key in k and k[key] not in ("", "nan") else d
    ok = lambda c: "**met**" if c else "**missed**"
    have = "haven_reuse16_rps" in k
    names = {"reuse16": "keep-alive, 16 connections", "reuse256": "keep-alive, 256 connections",
             "new16": "new connection per request, 16 at a time"}
    figure = lambda case: "hs_per_s" if case.startswith("new") else "rps"
    s = [BEGIN, "## HTTPS inspection: haven serve vs E2Guardian in SSL MITM mode "
         "(`bench/tls/run`)", ""]
    s.append("Run %s on %s CPUs (%s, %s); haven %s. The proxy under test pinned to CPU %s "
             "with `taskset` (haven `workers 1` and its signer process; E2Guardian `-N`, all "
             "its threads); the load generator (%s thread%s) and the origin on CPU %s. "
             "%s runs per figure, alternating the proxies, median. Whole benchmark: %s s."
             % (k["date"], k["nproc"], k["cpu_model"], k["kernel"], k["haven_commit"], k["cpu"],
                k["load_threads"], "" if k["load_threads"] == "1" else "s", k["load_cpu"],
                k["runs"], fnum(k["total_s"])))
    s.append("")
    if not have:
        s.append("**haven: inspection not available yet** (%s); only E2Guardian and the "
                 "origin were measured." % re.sub(r"/\S*/build/bench/tls/", "build/bench/tls/",
                                                  k.get("haven_unavailable", "?")))
        s.append("")
    s.append("**Set-up.** Origin: nginx %s (Debian), one process on CPU %s, HTTPS on "
             "`127.0.0.1:443` (TLS 1.2 and 1.3, its default session tickets), keep-alive, no "
             "access log, one static page of exactly %s bytes; its certificate (EC P-256, "
             "`CN=localhost`, SAN `localhost`) is signed by an *origin test CA* made for the "
             "run, which both proxies are given as their only trust anchor for origins. The "
             "name is `localhost` (both proxies resolve it from `/etc/hosts`) because SNI "
             "cannot carry an IP address; the port is 443 because E2Guardian 5.3 inspects a "
             "CONNECT only to port 443 and tunnels any other port untouched. Inspection CA: "
             "%s (%s, %s); E2Guardian gets the same certificate and key. %s"
             % (k.get("nginx_version", "?"), k["load_cpu"], fnum(k["body"]),
                k["ca_source"].replace("haven ca init", "`haven ca init`"), k["ca_subject"],
                k["ca_key"],
                "haven: `haven serve`, `workers 1`, `ca-dir` and `upstream-ca` set, `inspect "
                "on` in the policy's group (`bench/tls/policy.conf`: otherwise the policy of "
                "`bench/proxy`), its access log on, `resolver 127.0.0.1:1`."
                if have else ""))
    s.append("")
    s.append("E2Guardian %s (Debian `e2guardian`, built `--enable-sslmitm`), `-N`, "
             "`/etc/e2guardian/*.conf` copied and changed only in: `%s`. Its access log is on "
             "(`loglevel 3`), phrase and content scanning off (`weightedphrasemode = 0`). It "
             "signs every leaf with one key (`certprivatekeypath`, %s here, the kind of key "
             "haven's leaves have) and keeps the leaves it minted as files "
             "(`generatedcertpath`: %s after the run), reading and parsing the file again on "
             "each inspected connection. Lists: the same as `bench/proxy` (the UT1 `black` "
             "categories and adult-top1m: haven's database from `haven lists compile`, %s "
             "entries; E2Guardian's banned site, IP and URL lists, %s names)."
             % (k.get("e2g_version", "?"), e2g_changes(k["e2g_changes"]), k["e2g_cert_key"],
                fnum(k.get("e2g_generated_certs", 0)), fnum(k.get("haven_entries", 0)),
                fnum(k.get("e2g_sites", 0))))
    s.append("")
    s.append("**Method.** `bench/tls/bench_tlsload.c` (OpenSSL %s, epoll, non-blocking): each "
             "connection sends `CONNECT %s`, needs `200`, does a TLS handshake with SNI "
             "`localhost` and verifies the certificate against the inspection CA alone (chain "
             "and name; a certificate that does not verify stops the run, and the origin's "
             "own certificate is checked not to verify against it, so every counted request "
             "was inspected), then sends `GET /1k` with `Host`, a browser `User-Agent`, "
             "`Accept: */*` and `Connection: keep-alive`, one request at a time per connection "
             "(closed loop). Keep-alive: the connections are set up first, then each sends "
             "requests for %s s; the req/s count responses read whole inside that time. New "
             "connection per request: each request on its own CONNECT and full handshake (the "
             "client keeps no sessions), closed with `close_notify` after the response; the "
             "first %s s are not counted. Handshake time: from `connect()` to the end of the "
             "client's handshake (CONNECT answer included); request latency: from the request "
             "written to the response read whole. *Proxy CPU per request*: the CPU time of the "
             "proxy's processes over the run (`/proc`), divided by the requests: for the new-"
             "connection case that is the cost of one inspected connection (two handshakes, "
             "the proxy's server side and its client side to the origin, plus the request). "
             "RSS: `VmRSS` summed over the proxy's processes."
             % (k.get("openssl_version", "3"), TARGET, k["seconds"], k["warmup"]))
    s.append("")
    steals = [float(v) for key, v in k.items() if key.endswith("_steal")]
    s.append("**Noise.** The machine is a shared virtual one. Load on the CPUs used, over 2 s "
             "with the proxies idle, before the runs: %s (other processes above 5%% of a CPU: "
             "%s; the idle proxies and origin %s%%); after: %s (%s; %s%%). The host's steal "
             "time was at most %.1f%% of a CPU in any run. A run during which other user "
             "processes used more than 15%% of a CPU is done again (at most %s times in all): "
             "%s%s. Figures that vary from run to run are listed run "
             "by run."
             % (k.get("other_load_before", "?"), k.get("other_procs_before", "?"),
                k.get("ours_idle_before", "?"), k.get("other_load_after", "?"),
                k.get("other_procs_after", "?"), k.get("ours_idle_after", "?"),
                max(steals) if steals else 0.0, k.get("max_retries", "?"),
                ("done again: " + k["disturbed_retried"]) if "disturbed_retried" in k
                else "none was",
                ("; kept although disturbed (no retries left): " + k["disturbed_kept"])
                if "disturbed_kept" in k else ""))
    s.append("")
    s.append("**The origin alone** (bench_tlsload → nginx directly, both on CPU %s, %s × %s s): "
             "keep-alive, 16 connections: %s req/s; a new connection and full handshake per "
             "request, 16 at a time: %s handshakes/s (p50 %s). CPU %s's load during each "
             "proxy run is in the tables: near 100%% the load side, not the proxy, was the "
             "limit."
             % (k["load_cpu"], k["runs"], k["origin_seconds"], fnum(k["origin_reuse16_rps"]),
                fnum(k["origin_new16_hs_per_s"]), lat(k["origin_new16_hs_p50_us"]),
                k["load_cpu"]))
    s.append("")
    s.append("### Throughput (one core)")
    s.append("")
    s.append("| case | haven | E2Guardian | **haven ÷ E2G** | proxy CPU per request: haven / "
             "E2G (E2G ÷ haven) | proxy CPU use: haven / E2G | CPU %s busy: haven / E2G run "
             "| what limited it: haven / E2G |" % k["load_cpu"])
    s.append("|---|--:|--:|--:|--:|--:|--:|---|")

    def limit(sut, case):
        pre = "%s_%s_" % (sut, case)
        out = []
        if g(pre + "busy_load") >= 90:
            out.append("load CPU")
        if g(pre + "sut_cpu") >= 90:
            out.append("proxy CPU")
        if g(pre + "others") > 15:
            out.append("other processes (%s%% of a CPU)" % k[pre + "others"])
        return ", ".join(out) or "waiting (no CPU full)"

    ratios = []
    for case, mode, _ in CASES:
        unit = "handshakes/s" if mode == "new" else "req/s"
        e = g("e2g_%s_%s" % (case, figure(case)))
        ecpu = g("e2g_%s_cpu_us" % case)
        if have:
            h = g("haven_%s_%s" % (case, figure(case)))
            hcpu = g("haven_%s_cpu_us" % case)
            r = h / max(1.0, e)
            ratios.append((case, r, ecpu / max(1.0, hcpu)))
            s.append("| %s | **%s** %s | %s %s | **%.1f×** | %s / %s µs (%.1f×) | %s%% / %s%% "
                     "| %s%% / %s%% | %s / %s |" % (
                         names[case], fnum(h), unit, fnum(e), unit, r, fnum(hcpu), fnum(ecpu),
                         ecpu / max(1.0, hcpu), k["haven_%s_sut_cpu" % case],
                         k["e2g_%s_sut_cpu" % case], k["haven_%s_busy_load" % case],
                         k["e2g_%s_busy_load" % case], limit("haven", case),
                         limit("e2g", case)))
        else:
            s.append("| %s | — | %s %s | — | — / %s µs | — / %s%% | — / %s%% | — / %s |" % (
                names[case], fnum(e), unit, fnum(ecpu), k["e2g_%s_sut_cpu" % case],
                k["e2g_%s_busy_load" % case], limit("e2g", case)))
    s.append("")
    s.append("*Proxy CPU per request* is the proxy's CPU time in the measuring window over "
             "the requests answered in it; for a new connection per request it is the cost of "
             "one inspected connection. *What limited it*: the load CPU when it was at least "
             "90% busy (the origin alone shows its ceiling; the kernel's network work for both "
             "sides lands there too), the proxy when it used at least 90% of its core, "
             "otherwise the proxy was waiting (on the network, a timer or its own locks); "
             "other processes when user processes other than the proxy, the generator and the "
             "origin used more than 15% of a CPU during the run (median run).")
    s.append("")
    gen_max = max([g("%s_%s_cpu_pct" % (sut, case)) for sut in PEERS for case, _, _ in CASES]
                  + [0.0])
    s.append("The load CPU's share, per case (haven run / E2G run): bench_tlsload %s; the "
             "origin (nginx) %s; the rest of CPU %s's busy time is the kernel's network work "
             "(loopback delivers each segment in the sender's context). %s" % (
                 ", ".join("%s %s%% / %s%%" % (case, k.get("haven_%s_cpu_pct" % case, "—"),
                                              k.get("e2g_%s_cpu_pct" % case, "—"))
                           for case, _, _ in CASES),
                 ", ".join("%s %s%% / %s%%" % (case, k.get("haven_%s_origin_cpu_pct" % case,
                                                           "—"),
                                              k.get("e2g_%s_origin_cpu_pct" % case, "—"))
                           for case, _, _ in CASES), k["load_cpu"],
                 "The generator alone never used more than %s%% of a CPU." % fnum(gen_max)
                 if gen_max < 90 * float(k["load_threads"]) else
                 "**The generator itself used up to %s%% of a CPU: it may have been the "
                 "limit.**" % fnum(gen_max)))
    s.append("")
    s.append("Each run: %s." % "; ".join(
        "%s %s" % (case, ", ".join(
            "%s %s" % (who, k["%s_%s_%s_all" % (sut, case,
                                                  "hs_per_s" if mode == "new" else "rps")]
                        .replace(",", ", "))
            for who, sut in (("haven", "haven"), ("E2G", "e2g"))
            if "%s_%s_rps_all" % (sut, case) in k))
        for case, mode, _ in CASES))
    s.append("")
    s.append("### Handshakes and latency")
    s.append("")
    s.append("| case | | haven | E2Guardian |")
    s.append("|---|---|--:|--:|")
    hv = lambda key, fn: fn(k[key]) if key in k else "—"
    for case, mode, _ in CASES:
        if mode == "new":
            rows = [("handshake mean", "hs_mean_us"), ("handshake p50", "hs_p50_us"),
                    ("handshake p99", "hs_p99_us"), ("request p50", "req_p50_us"),
                    ("request p99", "req_p99_us"), ("connect() to response, p50",
                                                    "conn_p50_us"),
                    ("connect() to response, p99", "conn_p99_us")]
        else:
            rows = [("request p50", "req_p50_us"), ("request p99", "req_p99_us"),
                    ("set-up handshake p50 (all at once)", "setup_hs_p50_us"),
                    ("set-up handshake p99", "setup_hs_p99_us")]
        rows.append(("**proxy CPU per request**", "cpu_us"))
        for label, f in rows:
            fmt = (lambda v: "%s µs" % fnum(v)) if f == "cpu_us" else lat
            s.append("| %s | %s | %s | %s |" % (names[case], label,
                                                 hv("haven_%s_%s" % (case, f), fmt),
                                                 hv("e2g_%s_%s" % (case, f), fmt)))
    s.append("")
    oddities = []
    for sut, who in (("haven", "haven"), ("e2g", "E2Guardian")):
        for case, _, _ in CASES:
            bad = ["%s %s" % (k.get("%s_%s_%s" % (sut, case, f), "0"), f)
                   for f in ("errors", "timeouts", "reconnects")
                   if g("%s_%s_%s" % (sut, case, f)) > 0]
            if bad:
                oddities.append("%s %s: %s" % (who, case, ", ".join(bad)))
    if oddities:
        s.append("Connection errors, timeouts and connections the proxy ended (summed over "
                 "the runs): %s." % "; ".join(oddities))
        s.append("")
    if g("e2g_reuse16_req_p50_us") >= 30000 and g("e2g_reuse16_sut_cpu") < 50:
        s.append("**E2Guardian with keep-alive at 16 connections** waits about 40 ms in every "
                 "request after a connection's first (p50 %s) while using %s%% of its core. "
                 "Traced with strace: it writes each request to the origin as two TLS records, "
                 "the request line and then the rest of the head, on an upstream socket without "
                 "`TCP_NODELAY` (`Socket::connect` makes a new socket and does not set it), so "
                 "the second record waits for the origin's delayed ACK (40 ms on Linux), as "
                 "`bench/proxy` found for plain HTTP. Browsers keep inspected connections alive "
                 "and meet this too. With 256 connections the waits overlap and it gets %s "
                 "req/s."
                 % (lat(k["e2g_reuse16_req_p50_us"]), k["e2g_reuse16_sut_cpu"],
                    fnum(k["e2g_reuse256_rps"])))
        s.append("")
    s.append("### Certificates and the leaf cache")
    s.append("")
    s.append("| | haven | E2Guardian |")
    s.append("|---|---|---|")
    for label, f in (("protocol, cipher, key exchange", None), ("leaf key", "leaf_key"),
                     ("leaf issuer", "issuer")):
        if f is None:
            val = lambda sut: ("%s, %s, %s" % (k["%s_tls" % sut], k["%s_cipher" % sut],
                                               k["%s_group" % sut])
                               if "%s_tls" % sut in k else "—")
        else:
            val = lambda sut, f=f: k.get("%s_%s" % (sut, f), "—").replace("_", " ")
        s.append("| %s | %s | %s |" % (label, val("haven"), val("e2g")))
    if have and "haven_new16_leaf_hits" in k:
        cells = []
        for case, _, _ in CASES:
            hts, mss = g("haven_%s_leaf_hits" % case), g("haven_%s_leaf_misses" % case)
            cells.append("%s %s%% (%s hits, %s misses)" % (
                case, fnum(100 * hts / max(1.0, hts + mss), 2), fnum(hts), fnum(mss)))
        s.append("| leaf-certificate cache hit rate | %s; whole run %s hits, %s misses | "
                 "no cache in memory: %s leaf file(s) on disk, read on every connection |"
                 % ("; ".join(cells), fnum(k.get("haven_leaf_hits_total", 0)),
                    fnum(k.get("haven_leaf_misses_total", 0)),
                    fnum(k.get("e2g_generated_certs", 0))))
    else:
        s.append("| leaf-certificate cache hit rate | %s | no cache in memory: %s leaf "
                 "file(s) on disk, read on every connection |"
                 % ("— (`haven_tls_leaf_cache_*` not in /metrics)" if have else "—",
                    fnum(k.get("e2g_generated_certs", 0))))
    s.append("")
    s.append("One origin name, so after the first connection every leaf comes from the cache "
             "(haven) or the file (E2Guardian); minting cost is not in these figures.")
    s.append("")
    s.append("### Memory")
    s.append("")
    s.append("| RSS | haven | E2Guardian |")
    s.append("|---|--:|--:|")
    m = lambda key: mib(k[key]) if key in k else "—"
    s.append("| after start | %s | %s |" % (m("haven_rss_start_kb"), m("e2g_rss_start_kb")))
    s.append("| threads after start (all processes) | %s | %s |" % (
        k.get("haven_threads_start", "—"), k.get("e2g_threads_start", "—")))
    runs_mib = lambda key: ("" if key not in k else " (runs: %s)" % ", ".join(
        fnum(float(x) / 1024, 1) for x in k[key].split(",")))
    for case, _, _ in CASES:
        s.append("| after %s | %s%s | %s%s |" % (
            names[case], m("haven_%s_rss_after_kb" % case),
            runs_mib("haven_%s_rss_after_all" % case), m("e2g_%s_rss_after_kb" % case),
            runs_mib("e2g_%s_rss_after_all" % case)))
    s.append("| peak during 256 keep-alive connections (sampled every 0.2 s) | %s | %s |" % (
        m("haven_reuse256_rss_peak_kb"), m("e2g_reuse256_rss_peak_kb")))
    s.append("| peak of the whole run (`VmHWM`, summed) | %s | %s |" % (
        m("haven_hwm_kb"), m("e2g_hwm_kb")))
    s.append("")
    s.append("### Against the goal")
    s.append("")
    s.append("| goal | measured | |")
    s.append("|---|---|---|")
    if ratios:
        worst = min(ratios, key=lambda r: r[1])
        s.append("| haven ≥ 3× E2Guardian's inspected req/s | %s (lowest: %s) | %s |" % (
            ", ".join("%s %.1f×" % (c, r) for c, r, _ in ratios), names[worst[0]],
            ok(worst[1] >= 3)))
        cw = min(ratios, key=lambda r: r[2])
        s.append("| (the same by proxy CPU per request) | %s (lowest: %s) | %s |" % (
            ", ".join("%s %.1f×" % (c, x) for c, _, x in ratios), names[cw[0]],
            ok(cw[2] >= 3)))
        print("ratio_min=%.2f" % worst[1])
    else:
        s.append("| haven ≥ 3× E2Guardian's inspected req/s | not measured: haven's "
                 "inspection is not available yet | — |")
    s.append("")
    s.append(END)
    section = "\n".join(s) + "\n"
    out = Path(a.out)
    if out.exists():
        text = out.read_text()
        if BEGIN in text and END in text:
            pre, rest = text.split(BEGIN, 1)
            post = rest.split(END, 1)[1].lstrip("\n")
            text = pre + section + ("\n" + post if post else "")
        else:
            text = text.rstrip("\n") + "\n\n" + section
    else:
        text = section
    out.write_text(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("measure")
    p.add_argument("--work", required=True)
    p.add_argument("--haven", required=True)
    p.add_argument("--loadgen", required=True)
    p.add_argument("--policy", required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--e2g-lists", required=True)
    p.add_argument("--e2g-etc", default="/etc/e2guardian")
    p.add_argument("--cpu", default="1")
    p.add_argument("--load-cpu", default="0")
    p.add_argument("--load-threads", type=int, default=0)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--warmup", type=float, default=1)
    p.add_argument("--origin-seconds", type=float, default=3)
    p.add_argument("--key", choices=("ec", "rsa"), default="ec")
    p.add_argument("--quiet-wait", type=float, default=60)
    p.add_argument("--retries", type=int, default=6)
    p.set_defaults(fn=cmd_measure)
    p = sub.add_parser("report")
    p.add_argument("results")
    p.add_argument("out")
    p.set_defaults(fn=cmd_report)
    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
