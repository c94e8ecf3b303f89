#!/usr/bin/python3
"""Helpers of bench/proxy/run: haven serve beside E2Guardian 5.3 on one core.

    proxy.py lists DATA OUTDIR          E2Guardian's banned lists from UT1 + adult-top1m
    proxy.py measure --work W ...       start everything, measure, write W/results.txt
    proxy.py report RESULTS DOC         rewrite the bench/proxy section of DOC

measure prints progress on standard error and writes key=value lines. Everything
listens on 127.0.0.1 only, on ports the kernel picks; nothing is fetched.
"""

import argparse
import lzma
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

LOAD_HEADERS = [("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) bench/proxy"),
                ("Accept", "*/*"), ("Connection", "keep-alive")]
BLOCK_HOST = "www.pornhub.com"  # in adult-top1m: both filters list it
CASES = ("1k", "50k", "block")
ALT_CASES = ("1k", "50k")  # E2Guardian also without keep-alive (its block page closes anyway)
PEERS = ("haven", "e2g")


def best_e2g(kv, case, conns):
    """E2Guardian's higher median req/s of the two kinds of request, and which ("ka", "nc")."""
    ka = float(kv["e2g_%s_%d_rps" % (case, conns)])
    nc = float(kv.get("e2gnc_%s_%d_rps" % (case, conns), 0))
    return (nc, "nc") if nc > ka else (ka, "ka")


def say(msg):
    sys.stderr.write("bench/proxy: %s\n" % msg)
    sys.stderr.flush()


def die(msg):
    say(msg)
    sys.exit(1)


# --------------------------------------------------------------------------------------------
# Lists for E2Guardian (the same lists haven compiles; bench/lookup builds squidGuard's the
# same way)


def read_lines(path):
    path = Path(path)
    opener = lzma.open if path.suffix == ".xz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        return [line.strip() for line in f if line.strip()]


def ut1_black(ut1):
    """UT1 categories whose usage file says "black" (also "white black"), sorted."""
    black = []
    for d in sorted(p for p in Path(ut1).iterdir() if p.is_dir()):
        usage = d / "usage"
        if not usage.exists():
            continue
        words = []
        for line in usage.read_text(errors="replace").splitlines():
            if not line.startswith("#"):
                words += line.split()
        if "black" in words:
            black.append(d.name)
    return black


IPV4 = re.compile(r"^\d+\.\d+\.\d+\.\d+$")


def cmd_lists(a):
    data, out = Path(a.data), Path(a.outdir)
    out.mkdir(parents=True, exist_ok=True)
    black = ut1_black(data / "ut1")
    lines, urls = [], []
    for c in black:
        d = data / "ut1" / c
        if (d / "domains.xz").exists():
            lines += read_lines(d / "domains.xz")
        if (d / "urls.xz").exists():
            urls += read_lines(d / "urls.xz")
    adult = read_lines(data / "adult-top1m" / "domains.xz")
    names = {x.lstrip(".").lower() for x in lines + adult}
    ips = sorted(x for x in names if IPV4.match(x))
    hosts = sorted(x for x in names if not IPV4.match(x))
    urlset = sorted({u.lower() for u in urls})
    (out / "bannedsitelist").write_text("\n".join(hosts) + "\n")
    (out / "bannedsiteiplist").write_text("\n".join(ips) + "\n")
    (out / "bannedurllist").write_text("\n".join(urlset) + "\n")
    print("e2g_black_categories=%d" % len(black))
    print("e2g_domain_lines=%d" % (len(lines) + len(adult)))
    print("e2g_sites=%d" % len(hosts))
    print("e2g_site_ips=%d" % len(ips))
    print("e2g_urls=%d" % len(urlset))


# --------------------------------------------------------------------------------------------
# Processes


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Proc:
    """A process we started, pinned to a CPU, stopped by its own PID."""

    def __init__(self, name, cmd, cpu, log, cwd=None):
        self.name = name
        self.log = open(log, "ab")
        self.p = subprocess.Popen(["taskset", "-c", str(cpu)] + cmd, stdout=self.log,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd)
        self.pid = self.p.pid  # taskset execs the command: same PID

    def alive(self):
        return self.p.poll() is None

    def stop(self, sig=signal.SIGTERM, grace=3.0):
        if self.p.poll() is None:
            try:
                os.kill(self.pid, sig)
                self.p.wait(grace)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)  # E2Guardian -N may ignore SIGTERM
                self.p.wait()
        self.log.close()


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def rss_kb(pid):
    return int(proc_status(pid)["VmRSS"].split()[0])


def hwm_kb(pid):
    return int(proc_status(pid)["VmHWM"].split()[0])


def cpu_ticks(pid):
    """utime + stime of the whole process (all threads), in clock ticks."""
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])


def cpu_times():
    """{cpu: (busy, steal, total)} from /proc/stat, in ticks. Steal is time the virtual CPU
    was ready to run but the host ran something else."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            t = line.split()
            if re.match(r"^cpu\d+$", t[0]):
                v = [int(x) for x in t[1:9]] + [0] * (8 - len(t[1:9]))
                idle, steal = v[3] + v[4], v[7]
                out[int(t[0][3:])] = (sum(v) - idle - steal, steal, sum(v))
    return out


class Watch:
    """While a run lasts: peak RSS of a process (sampled), its CPU time, and each CPU's load."""

    def __init__(self, pid):
        self.pid = pid
        self.peak = 0
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self.loop, daemon=True)

    def loop(self):
        while not self.stop_ev.is_set():
            try:
                self.peak = max(self.peak, rss_kb(self.pid))
            except (OSError, KeyError, ValueError):
                pass
            self.stop_ev.wait(0.1)

    def __enter__(self):
        self.t0 = time.monotonic()
        self.ticks0 = cpu_ticks(self.pid)
        self.cpus0 = cpu_times()
        self.t.start()
        return self

    def __exit__(self, *exc):
        self.stop_ev.set()
        self.t.join()
        wall = time.monotonic() - self.t0
        hz = os.sysconf("SC_CLK_TCK")
        self.cpu_s = (cpu_ticks(self.pid) - self.ticks0) / hz
        self.cpu_pct = 100.0 * self.cpu_s / wall
        c1 = cpu_times()
        d = {c: [c1[c][i] - self.cpus0[c][i] for i in range(3)] for c in c1 if c in self.cpus0}
        self.busy = {c: 100.0 * v[0] / max(1, v[2]) for c, v in d.items()}
        self.steal = {c: 100.0 * v[1] / max(1, v[2]) for c, v in d.items()}
        return False


# --------------------------------------------------------------------------------------------
# Requests


def request_bytes(target, host, headers=LOAD_HEADERS):
    lines = ["GET %s HTTP/1.1" % target, "Host: %s" % host]
    lines += ["%s: %s" % kv for kv in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def lua_script(target, host, headers=LOAD_HEADERS):
    out = ['wrk.method = "GET"']
    if target:
        out.append('wrk.path = "%s"' % target)
    out.append('wrk.headers["Host"] = "%s"' % host)
    out += ['wrk.headers["%s"] = "%s"' % kv for kv in headers]
    return "\n".join(out) + "\n"


def http_once(port, req, timeout=10.0):
    """Send req on a new connection; (status, head text, body bytes). Reads to Content-Length
    or to the close."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(req)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    text = head.decode("latin-1")
    m = re.search(r"(?im)^content-length:\s*(\d+)", text)
    want = int(m.group(1)) if m else None
    while want is None or len(body) < want:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    s.close()
    st = re.match(r"HTTP/1\.\d (\d{3})", text)
    return (int(st.group(1)) if st else 0), text, body


def wait_ready(port, req, proc, limit=120.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if not proc.alive():
            die("%s exited while starting; see its log" % proc.name)
        try:
            status, _, _ = http_once(port, req, timeout=2.0)
            if status:
                return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.05)
    die("%s did not answer within %d s" % (proc.name, limit))


# --------------------------------------------------------------------------------------------
# wrk and bench_loadgen

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
BYTES = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4}


def ms(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    return float(m.group(1)) * UNITS[m.group(2)] if m else float("nan")


def parse_wrk(out):
    r = {}
    m = re.search(r"Requests/sec:\s*([\d.]+)", out)
    r["rps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"(\d+) requests in ([\d.]+\w+), ([\d.]+)(\w+) read", out)
    if m:
        r["requests"] = int(m.group(1))
        r["bytes"] = float(m.group(3)) * BYTES.get(m.group(4), 1)
    for p in ("50", "99"):
        m = re.search(r"^\s+%s%%\s+([\d.]+\w+)" % p, out, re.M)
        r["p%s_ms" % p] = ms(m.group(1)) if m else float("nan")
    m = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    r["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    r["sock_errors"] = "%s/%s/%s/%s" % m.groups() if m else "0/0/0/0"
    r["timeouts"] = int(m.group(4)) if m else 0
    return r


def kv_lines(text):
    out = {}
    for line in text.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    return out


# --------------------------------------------------------------------------------------------
# Configuration files


def nginx_conf(work, port):
    w = work / "origin"
    return """# bench/proxy origin: one nginx process, no master, no access log.
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
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    open_file_cache max=16;
    server {{
        listen 127.0.0.1:{port} backlog=8192;
        root {w}/www;
    }}
}}
""".format(w=w, port=port)


def page(n):
    """An HTML page of exactly n bytes."""
    head = "<!doctype html><html><head><title>bench/proxy</title></head><body>\n"
    tail = "</body></html>\n"
    line = ("<p>The quick brown fox jumps over the lazy dog; a line of filler text for the "
            "proxy benchmark.</p>\n")
    body = ""
    while len(head) + len(body) + len(line) + len(tail) <= n:
        body += line
    s = head + body
    s += "x" * (n - len(s) - len(tail)) + tail
    assert len(s) == n
    return s


def set_opt(text, key, val):
    """Set `key = val` in an E2Guardian configuration: replace the first (maybe commented)
    line that sets it, or append one."""
    pat = re.compile(r"^#?[ \t]*%s[ \t]*=.*$" % re.escape(key), re.M)
    if pat.search(text):
        return pat.sub(lambda m: "%s = %s" % (key, val), text, count=1), True
    return text.rstrip("\n") + "\n%s = %s\n" % (key, val), False


E2G_MAIN_OPTS = [
    ("filterip", "127.0.0.1"),
    ("filterports", None),                # the port
    ("transparenthttpsport", None),       # another free port (it is bound)
    ("httpworkers", "1100"),              # >= the 1,000 connections (thread per connection)
    ("weightedphrasemode", "0"),          # no phrase / content scanning
    ("loglocation", None),
    ("dstatlocation", None),
    ("pidfilename", None),
]


def e2g_conf(work, etc, port, tport):
    """Copy /etc/e2guardian/*.conf to work/e2g with our changes; returns the changes."""
    d = work / "e2g"
    vals = {"filterports": str(port), "transparenthttpsport": str(tport),
            "loglocation": "'%s/log/access.log'" % d, "dstatlocation": "'%s/log/dstats.log'" % d,
            "pidfilename": "'%s/e2guardian.pid'" % d}
    text = (Path(etc) / "e2guardian.conf").read_text()
    changes = []
    for k, v in E2G_MAIN_OPTS:
        v = vals.get(k, v)
        text, _ = set_opt(text, k, v)
        changes.append("%s = %s" % (k, v))
    (d / "e2guardian.conf").write_text(text)
    grp = (Path(etc) / "e2guardianf1.conf").read_text()
    for name in ("bannedsitelist", "bannedsiteiplist", "bannedurllist"):
        old = "path=%s/lists/%s'" % (etc, name)
        if old not in grp:
            die("%s/e2guardianf1.conf has no %s line to point at our list" % (etc, name))
        grp = grp.replace(old, "path=%s/lists/%s'" % (d, name))
    # The group file is <main config minus .conf>f1.conf.
    (d / "e2guardianf1.conf").write_text(grp)
    return changes


# --------------------------------------------------------------------------------------------
# Measuring


class Bench:
    def __init__(self, a):
        self.a = a
        self.work = Path(a.work)
        self.res = open(self.work / "results.txt", "a")
        self.procs = []
        self.cpu, self.lcpu = a.cpu, a.load_cpu

    def put(self, k, v):
        self.res.write("%s=%s\n" % (k, v))
        self.res.flush()

    def start(self, name, cmd, cpu, cwd=None):
        p = Proc(name, cmd, cpu, self.work / "logs" / (name + ".log"), cwd=cwd)
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in reversed(self.procs):
            p.stop()
        self.procs = []

    def wrk(self, port, script, conns, seconds, url_path="/", extra=()):
        cmd = ["taskset", "-c", str(self.lcpu), "wrk", "-t1", "-c%d" % conns,
               "-d%ds" % seconds, "--latency", "--timeout", "10s", "-s", str(script)]
        cmd += list(extra) + ["http://127.0.0.1:%d%s" % (port, url_path)]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            die("wrk failed: %s" % out.stderr.strip())
        with open(self.work / "logs" / "wrk.log", "a") as f:
            f.write("$ %s\n%s\n" % (" ".join(cmd), out.stdout))
        return parse_wrk(out.stdout)

    def loadgen(self, *args, stdin=None):
        cmd = ["taskset", "-c", str(self.lcpu), self.a.loadgen] + [str(x) for x in args]
        out = subprocess.run(cmd, capture_output=True, text=True, stdin=stdin)
        with open(self.work / "logs" / "loadgen.log", "a") as f:
            f.write("$ %s\n%s%s\n" % (" ".join(cmd), out.stdout, out.stderr))
        if out.returncode != 0:
            die("bench_loadgen %s failed: %s" % (args[0], out.stderr.strip()))
        return kv_lines(out.stdout)

    # ----------------------------------------------------------------------------------------

    def setup(self):
        a, w = self.a, self.work
        for sub in ("logs", "origin/www", "origin/tmp", "e2g/log", "haven-var", "req"):
            (w / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(w / "e2g" / "log", 0o777)  # E2Guardian drops to its own user
        self.ports = {k: free_port() for k in ("origin", "haven", "havennolog", "e2g",
                                                "e2g_tls", "sink", "relay_rw", "relay_splice")}
        if len(set(self.ports.values())) != len(self.ports):
            die("the kernel gave the same free port twice; run again")
        (w / "origin" / "www" / "1k").write_text(page(1024))
        (w / "origin" / "www" / "50k").write_text(page(51200))
        (w / "origin" / "nginx.conf").write_text(nginx_conf(w, self.ports["origin"]))
        op = self.ports["origin"]
        origin = "127.0.0.1:%d" % op
        self.targets = {"1k": ("http://%s/1k" % origin, origin),
                        "50k": ("http://%s/50k" % origin, origin),
                        "block": ("http://%s/" % BLOCK_HOST, BLOCK_HOST)}
        self.scripts, self.reqs = {}, {}
        nc = [h for h in LOAD_HEADERS if h[0] != "Connection"]
        for case, (target, host) in self.targets.items():
            for name, hdrs in ((case, LOAD_HEADERS), (case + "_nc", nc)):
                (w / "req" / (name + ".lua")).write_text(lua_script(target, host, hdrs))
                (w / "req" / (name + ".http")).write_bytes(request_bytes(target, host, hdrs))
                self.scripts[name] = w / "req" / (name + ".lua")
                self.reqs[name] = w / "req" / (name + ".http")
        (w / "req" / "origin.lua").write_text(lua_script(None, origin))
        (w / "req" / "origin.http").write_bytes(request_bytes("/1k", origin))
        (w / "req" / "origin-close.http").write_bytes(
            request_bytes("/1k", origin, LOAD_HEADERS[:2] + [("Connection", "close")]))
        (w / "req" / "origin-close.lua").write_text(
            lua_script(None, origin, LOAD_HEADERS[:2] + [("Connection", "close")]))
        # haven: one worker; logs on as E2Guardian's are; a resolver that answers nothing,
        # so a name that were not blocked could not be looked up outside this machine.
        for name, log in (("haven", "access.log.json"), ("havennolog", '""')):
            (w / (name + ".conf")).write_text(
                "# bench/proxy: haven serve on one core\n"
                "listen 127.0.0.1:%d\nworkers 1\npolicy %s\ndatabase %s\n"
                "data-dir %s\naccess-log %s\nresolver 127.0.0.1:1\ntimeout-drain 1s\n"
                % (self.ports[name], a.policy, a.db, w / "haven-var", log))
        changes = e2g_conf(w, a.e2g_etc, self.ports["e2g"], self.ports["e2g_tls"])
        self.put("e2g_changes", "; ".join(changes))
        for k, v in self.ports.items():
            self.put("port_" + k, v)

    def start_origin(self):
        w = self.work
        self.origin = self.start("nginx", ["nginx", "-c", str(w / "origin" / "nginx.conf"),
                                           "-p", str(w / "origin")], self.lcpu)
        req = request_bytes("/1k", "127.0.0.1:%d" % self.ports["origin"])
        wait_ready(self.ports["origin"], req, self.origin, 20)
        status, _, body = http_once(self.ports["origin"], req)
        if status != 200 or len(body) != 1024:
            die("the origin answers %d with %d bytes for /1k" % (status, len(body)))

    def origin_alone(self):
        p = self.ports["origin"]
        for name, script, path in (("1k_ka", "origin.lua", "/1k"),
                                   ("1k_close", "origin-close.lua", "/1k"),
                                   ("50k_ka", "origin.lua", "/50k")):
            say("origin alone (nginx and wrk both on CPU %d): %s" % (self.lcpu, name))
            runs = [self.wrk(p, self.work / "req" / script, 16, self.a.origin_seconds, path)
                    for _ in range(self.a.runs)]
            rps = [r["rps"] for r in runs]
            self.put("origin_%s_rps" % name, "%.0f" % statistics.median(rps))
            self.put("origin_%s_rps_all" % name, ",".join("%.0f" % x for x in rps))

    def start_sut(self, name):
        w, a = self.work, self.a
        if name in ("haven", "havennolog"):
            cmd = [a.haven, "serve", "--config", str(w / (name + ".conf"))]
        else:
            pidfile = w / "e2g" / "e2guardian.pid"
            if pidfile.exists():
                pidfile.unlink()  # it refuses to start while its pid file exists
            cmd = ["e2guardian", "-N", "-c", str(w / "e2g" / "e2guardian.conf")]
        p = self.start(name, cmd, self.cpu)
        t = wait_ready(self.ports[name], request_bytes(*self.targets["1k"]), p)
        time.sleep(0.5)
        self.put("%s_ready_s" % name, "%.3f" % t)
        self.put("%s_rss_start_kb" % name, rss_kb(p.pid))
        self.put("%s_threads_start" % name, proc_status(p.pid)["Threads"])
        return p

    def probe(self, sut):
        """Both filters must answer the origin's pages whole and block the listed name."""
        port = self.ports[sut]
        for case in CASES:
            status, head, body = http_once(port, request_bytes(*self.targets[case]))
            self.put("probe_%s_%s" % (sut, case), "%d %d" % (status, len(body)))
            if case == "1k" and (status != 200 or len(body) != 1024):
                die("%s: /1k through the proxy gave %d, %d bytes" % (sut, status, len(body)))
            if case == "50k" and (status != 200 or len(body) != 51200):
                die("%s: /50k through the proxy gave %d, %d bytes" % (sut, status, len(body)))
            if case == "block":
                text = body.decode("utf-8", "replace")
                blocked = ("blocked" in text.lower() or "denied" in text.lower())
                if not blocked or status == 0:
                    die("%s did not block %s (status %d)" % (sut, BLOCK_HOST, status))
                self.put("%s_block_status" % sut, status)
                self.put("%s_block_bytes" % sut, len(body))

    def idle_conns(self, sut, p, n):
        """RSS before and with n idle keep-alive connections (each after one request)."""
        port = self.ports[sut]
        before = rss_kb(p.pid)
        cmd = ["taskset", "-c", str(self.lcpu), self.a.loadgen, "idle", "127.0.0.1:%d" % port,
               str(self.reqs["1k"]), str(n), "60"]
        lg = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        got = {}
        for line in lg.stdout:
            k, _, v = line.strip().partition("=")
            got[k] = v
            if k == "failed":
                break
        time.sleep(1.0)
        during = rss_kb(p.pid)
        threads = proc_status(p.pid)["Threads"]
        lg.stdin.close()
        rest = lg.stdout.read()
        lg.wait()
        got.update(kv_lines(rest))
        time.sleep(0.5)
        self.put("%s_idle_n" % sut, n)
        self.put("%s_idle_open" % sut, got.get("idle", "0"))
        self.put("%s_idle_failed" % sut, got.get("failed", "?"))
        self.put("%s_idle_closed_by_server" % sut, got.get("closed_by_server", "?"))
        self.put("%s_idle_rss_before_kb" % sut, before)
        self.put("%s_idle_rss_during_kb" % sut, during)
        self.put("%s_idle_threads" % sut, threads)
        self.put("%s_idle_bytes_per_conn" % sut, "%.0f" % ((during - before) * 1024.0 / n))

    def variants(self, case, conns):
        """(label, proxy, script) of the throughput runs of one case: haven and E2Guardian
        with keep-alive requests, and E2Guardian with requests that do not ask for it
        ("e2gnc"), where it closes each client connection after the response: at low
        connection counts that is faster for it (see the report)."""
        out = [("haven", "haven", self.scripts[case]), ("e2g", "e2g", self.scripts[case])]
        if case in ALT_CASES and conns in self.a.alt_conns:
            out.append(("e2gnc", "e2g", self.scripts[case + "_nc"]))
        return out

    def throughput(self):
        a = self.a
        peak1000 = {}
        for case in CASES:
            for conns in a.conns:
                res = {}
                for run in range(a.runs):
                    for label, sut, script in self.variants(case, conns):
                        say("%s %s, %d connections, run %d/%d" % (label, case, conns, run + 1,
                                                                   a.runs))
                        p = self.sut[sut]
                        with Watch(p.pid) as wt:
                            r = self.wrk(self.ports[sut], script, conns, a.seconds)
                        if not p.alive():
                            die("%s died during the run" % sut)
                        r["cpu"] = wt.cpu_pct
                        r["busy_load"] = wt.busy.get(self.lcpu, 0.0)
                        r["busy_sut"] = wt.busy.get(self.cpu, 0.0)
                        r["steal"] = max(wt.steal.values())
                        res.setdefault(label, []).append(r)
                        if conns >= 1000:
                            peak1000[sut] = max(peak1000.get(sut, 0), wt.peak)
                        time.sleep(0.5)
                for label, rs in res.items():
                    key = "%s_%s_%d" % (label, case, conns)
                    med = sorted(rs, key=lambda r: r["rps"])[len(rs) // 2]
                    self.put(key + "_rps", "%.0f" % med["rps"])
                    self.put(key + "_rps_all", ",".join("%.0f" % r["rps"] for r in rs))
                    for f in ("p50_ms", "p99_ms"):
                        self.put("%s_wrk_%s" % (key, f), "%.3f" % med[f])
                    self.put(key + "_cpu", "%.0f" % statistics.median(r["cpu"] for r in rs))
                    self.put(key + "_busy_load",
                             "%.0f" % statistics.median(r["busy_load"] for r in rs))
                    self.put(key + "_busy_sut",
                             "%.0f" % statistics.median(r["busy_sut"] for r in rs))
                    self.put(key + "_resp_bytes",
                             "%.0f" % (med.get("bytes", 0) / max(1, med.get("requests", 1))))
                    self.put(key + "_steal", "%.1f" % max(r["steal"] for r in rs))
                    self.put(key + "_non2xx", med["non2xx"])
                    self.put(key + "_sock_errors", med["sock_errors"])
        for sut, v in peak1000.items():
            self.put("%s_rss_1000_kb" % sut, v)

    def fixed(self, jobs, rate, conns):
        """a.runs fixed-rate runs of each job (key, port, request file, pid), alternating;
        the median of each percentile, and the CPU time the process used per request."""
        a = self.a
        rs = {key: [] for key, _, _, _ in jobs}
        for _ in range(a.runs):
            for key, port, req, pid in jobs:
                with Watch(pid) as wt:
                    r = self.loadgen("rate", "127.0.0.1:%d" % port, req, rate, conns,
                                     a.lat_seconds, a.lat_warmup)
                r["steal"] = max(wt.steal.values())
                r["cpu_us"] = 1e6 * wt.cpu_s / max(1, int(r["done"]))
                rs[key].append(r)
                time.sleep(0.3)
        for key, runs in rs.items():
            self.put(key + "_rate_target", runs[0]["rate_target"])
            for f in ("p50_us", "p90_us", "p99_us", "p999_us", "max_us", "rate_achieved",
                      "cpu_us"):
                v = [float(r[f]) for r in runs]
                self.put("%s_%s" % (key, f), "%.1f" % statistics.median(v))
                self.put("%s_%s_all" % (key, f), ",".join("%.1f" % x for x in v))
            for f in ("failed", "unfinished", "connect_errors", "reconnects", "recorded",
                      "done"):
                self.put("%s_%s" % (key, f), sum(int(r.get(f, 0)) for r in runs))
            self.put(key + "_steal", "%.1f" % max(r["steal"] for r in runs))

    def latency(self):
        """Each proxy at the same fixed rate, E2Guardian with the requests (keep-alive or
        not) that gave it more req/s in the throughput runs; first the origin alone at the
        rate of the first case, for the machine's own jitter."""
        a = self.a
        first = True
        for case in CASES:
            for conns in a.conns:
                res = self.results()
                e2g, mode = best_e2g(res, case, conns)
                top = min(float(res["haven_%s_%d_rps" % (case, conns)]), e2g)
                rate = max(100, int(float("%.2g" % (top * a.lat_fraction))))
                if first:
                    first = False
                    say("origin alone, %d connections at %d req/s (fixed rate)" % (conns, rate))
                    self.fixed([("origin_%s_fixed" % name, self.ports["origin"],
                                 self.work / "req" / req, self.origin.pid)
                                for name, req in (("ka", "origin.http"),
                                                  ("close", "origin-close.http"))], rate, conns)
                    self.put("origin_fixed_case", "%s_%d" % (case, conns))
                say("%s, %d connections at %d req/s (fixed rate, %d runs each)"
                    % (case, conns, rate, a.runs))
                jobs = []
                for sut in PEERS:
                    req = self.reqs[case + ("_nc" if sut == "e2g" and mode == "nc" else "")]
                    key = "%s_%s_%d_fixed" % (sut, case, conns)
                    self.put(key + "_mode", mode if sut == "e2g" else "ka")
                    jobs.append((key, self.ports[sut], req, self.sut[sut].pid))
                self.fixed(jobs, rate, conns)

    def tunnel(self, suts):
        a = self.a
        sink = "127.0.0.1:%d" % self.ports["sink"]
        self.start("sink", [a.loadgen, "sink", sink], self.lcpu)
        for mode in ("rw", "splice"):
            self.start("relay_" + mode, [a.relay, "127.0.0.1:%d" % self.ports["relay_" + mode],
                                         sink, mode], self.cpu)
        time.sleep(0.3)
        ways = [("direct", sink, "-"), ("relay_rw", None, "-"), ("relay_splice", None, "-")]
        ways += [(s, None, sink) for s in suts]
        gb = {w[0]: [] for w in ways}
        for run in range(a.runs):
            for name, addr, target in ways:
                say("tunnel %s, %d bytes, run %d/%d" % (name, a.tunnel_bytes, run + 1, a.runs))
                addr = addr or "127.0.0.1:%d" % self.ports[name]
                r = self.loadgen("tunnel", addr, target, a.tunnel_bytes)
                if r.get("received") != str(a.tunnel_bytes):
                    die("tunnel %s: the sink received %s of %d bytes" % (name, r.get("received"),
                                                                        a.tunnel_bytes))
                gb[name].append(float(r["gbps"]))
        for name, v in gb.items():
            self.put("tunnel_%s_gbps" % name, "%.3f" % statistics.median(v))
            self.put("tunnel_%s_gbps_all" % name, ",".join("%.3f" % x for x in v))
        self.put("tunnel_bytes", a.tunnel_bytes)

    def results(self):
        return kv_lines((self.work / "results.txt").read_text())

    # ---------------------------------------------------------------------------------------- profile

    def profile(self):
        """Where haven's time goes: syscalls per request (strace), a perf profile under load,
        the same load with the access log off, and a perf profile of the tunnel."""
        a, w = self.a, self.work
        hv = self.sut["haven"]
        port = self.ports["haven"]
        if a.strace:
            say("profile: system calls per request (strace -c -f, 1k, 16 connections, fixed rate)")
            out = w / "logs" / "strace.txt"
            st = subprocess.Popen(["taskset", "-c", str(self.lcpu), a.strace, "-c", "-f", "-o",
                                   str(out), "-p", str(hv.pid)], stderr=subprocess.DEVNULL)
            time.sleep(1.0)
            r = self.loadgen("rate", "127.0.0.1:%d" % port, self.reqs["1k"], 1000, 16, 4, 1)
            time.sleep(0.5)
            st.send_signal(signal.SIGINT)
            st.wait()
            n = int(r["done"])
            self.put("strace_requests", n)
            for line in out.read_text().splitlines():
                t = line.split()
                if len(t) >= 5 and re.match(r"^[\d.]+$", t[0]) and t[-1] != "total":
                    calls = int(t[3])
                    self.put("strace_%s" % t[-1], "%.2f" % (calls / max(1, n)))
                    self.put("strace_%s_pct" % t[-1], t[0])
        if a.perf:
            for name, case, seconds in (("req", "1k", 6), ("tunnel", None, 0)):
                say("profile: perf record -g on haven (%s)" % name)
                data = w / ("perf-%s.data" % name)
                rec = subprocess.Popen(["taskset", "-c", str(self.lcpu), a.perf, "record", "-g",
                                        "-F", "999", "-o", str(data), "-p", str(hv.pid)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(1.0)
                if case:
                    r = self.wrk(port, self.scripts[case], 16, seconds)
                    self.put("perf_req_rps", "%.0f" % r["rps"])
                else:
                    r = self.loadgen("tunnel", "127.0.0.1:%d" % port,
                                     "127.0.0.1:%d" % self.ports["sink"], a.tunnel_bytes)
                    self.put("perf_tunnel_gbps", r["gbps"])
                rec.send_signal(signal.SIGINT)
                rec.wait()
                self.perf_summary(name, data)
        say("profile: haven with and without its access log (1k, 16 connections)")
        nolog = self.start_sut("havennolog")
        rate = int(float(self.results().get("haven_1k_16_fixed_rate_target", 1000)))
        self.fixed([("diag_%s_fixed" % sut, self.ports[sut], self.reqs["1k"], p.pid)
                    for sut, p in (("haven", hv), ("havennolog", nolog))], rate, 16)
        rs = {"haven": [], "havennolog": []}
        for _ in range(a.runs):
            for sut in rs:
                rs[sut].append(self.wrk(self.ports[sut], self.scripts["1k"], 16,
                                        a.diag_seconds)["rps"])
        nolog.stop()
        for sut, v in rs.items():
            self.put("diag_%s_1k_16_rps" % sut, "%.0f" % statistics.median(v))
            self.put("diag_%s_1k_16_rps_all" % sut, ",".join("%.0f" % x for x in v))

    def perf_summary(self, name, data):
        """Shares of the samples: by DSO (self), by system call and kernel path (children),
        and the top user-space symbols."""
        def report(*args):
            out = subprocess.run([self.a.perf, "report", "-i", str(data), "--stdio",
                                  "--percent-limit", "0.3"] + list(args),
                                 capture_output=True, text=True)
            return out.stdout
        for line in report("--no-children", "--sort", "dso", "-g", "none").splitlines():
            m = re.match(r"^\s+([\d.]+)%\s+(\S+)", line)
            if m:
                dso = m.group(2).strip("[]")
                self.put("perf_%s_dso_%s" % (name, dso), m.group(1))
        for line in report("--children", "--sort", "symbol", "-g", "none").splitlines():
            m = re.match(r"^\s+([\d.]+)%\s+([\d.]+)%\s+\[(.)\]\s+(\S+)", line)
            if not m:
                continue
            sym = m.group(4)
            if m.group(3) == "k" and sym in PERF_KERNEL:
                self.put("perf_%s_k_%s" % (name, sym), m.group(1))
        user = []
        for line in report("--no-children", "--sort", "dso,symbol", "-g", "none").splitlines():
            m = re.match(r"^\s+([\d.]+)%\s+(\S+)\s+\[\.\]\s+(\S+)", line)
            if m and not m.group(2).startswith("[kernel"):
                user.append("%s %s %s" % (m.group(1), m.group(2), m.group(3)))
        for u in user[:12]:
            self.put("perf_%s_user" % name, u)


# Kernel entry points and paths whose inclusive share the report names.
PERF_KERNEL = ["entry_SYSCALL_64_after_hwframe", "__x64_sys_connect", "__x64_sys_close",
               "ksys_write", "ksys_read", "__x64_sys_futex", "__x64_sys_epoll_ctl",
               "__x64_sys_epoll_wait", "__x64_sys_socket", "__x64_sys_setsockopt",
               "__x64_sys_getsockopt", "__x64_sys_getrandom", "__x64_sys_accept4",
               "__x64_sys_shutdown", "__x64_sys_getpeername", "schedule", "net_rx_action",
               "tcp_sendmsg", "tcp_recvmsg", "try_to_wake_up", "sock_def_readable",
               "__memcpy", "copy_user_enhanced_fast_string", "_copy_to_iter",
               "_copy_from_iter", "asm_sysvec_apic_timer_interrupt", "rep_movs_alternative"]


def cmd_measure(a):
    a.conns = [int(x) for x in a.conns.split(",")]
    a.alt_conns = [int(x) for x in a.alt_conns.split(",") if x]
    b = Bench(a)
    t_start = time.monotonic()
    for key in ("cpu", "load_cpu", "runs", "seconds", "origin_seconds", "lat_seconds",
                "lat_warmup", "lat_fraction", "diag_seconds"):
        b.put(key, getattr(a, key))
    b.put("alt_conns", ",".join(str(x) for x in a.alt_conns))
    b.put("block_host", BLOCK_HOST)
    try:
        b.setup()
        b.start_origin()
        b.origin_alone()
        b.sut = {}
        for sut in PEERS:
            say("starting %s on CPU %d" % (sut, b.cpu))
            b.sut[sut] = b.start_sut(sut)
            b.probe(sut)
            say("%s: %d idle keep-alive connections" % (sut, a.idle_conns))
            b.idle_conns(sut, b.sut[sut], a.idle_conns)
        b.throughput()
        b.latency()
        for sut in PEERS:
            b.put("%s_hwm_kb" % sut, hwm_kb(b.sut[sut].pid))
            b.put("%s_rss_end_kb" % sut, rss_kb(b.sut[sut].pid))
            b.put("%s_threads_end" % sut, proc_status(b.sut[sut].pid)["Threads"])
        b.tunnel(PEERS)
        if a.profile:
            b.profile()
        b.put("measure_s", "%.0f" % (time.monotonic() - t_start))
    finally:
        b.stop_all()


# --------------------------------------------------------------------------------------------
# Report


BEGIN, END = "<!-- bench/proxy begin -->", "<!-- bench/proxy end -->"


def load_kv(path):
    kv = {}
    for line in Path(path).read_text().splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            if k.startswith("perf_") and k.endswith("_user"):
                kv.setdefault(k, []).append(v)
            else:
                kv[k] = v
    return kv


def e2g_changes(text):
    """The configuration changes as the report shows them: ports and work paths generic."""
    text = re.sub(r"(filterports|transparenthttpsport) = \d+", r"\1 = PORT", text)
    text = re.sub(r"'[^']*/build/bench/proxy/", "'build/bench/proxy/", text)
    return text.replace("; ", "`, `")


def fnum(x, digits=0):
    return "{:,.{}f}".format(float(x), digits)


def lat(us):
    """Microseconds as a short latency."""
    us = float(us)
    if us < 1000:
        return "%.0f µs" % us
    if us < 10000:
        return "%.2f ms" % (us / 1000)
    if us < 100000:
        return "%.1f ms" % (us / 1000)
    return "%.0f ms" % (us / 1000)


def cmd_report(a):
    k = load_kv(a.results)
    f = lambda key: float(k[key])
    g = lambda key, d=0.0: float(k[key]) if key in k and k[key] not in ("", "nan") else d
    ok = lambda c: "**met**" if c else "**missed**"
    conns = sorted({int(m.group(1)) for key in k for m in [re.match(r"haven_1k_(\d+)_rps$",
                                                                   key)] if m})
    names = {"1k": "1 KB page", "50k": "50 KB page", "block": "block page"}
    s = [BEGIN, "## Proxy request path and CONNECT tunnel: haven serve vs E2Guardian "
         "(`bench/proxy/run`)", ""]
    s.append("Run %s on %s CPUs (%s, %s); haven %s. The proxy under test pinned to CPU %s "
             "with `taskset` (haven `workers 1`; E2Guardian's threads all on that CPU); wrk, "
             "the fixed-rate client and the origin on CPU %s. %s runs per throughput figure, "
             "median. Whole benchmark: %s s."
             % (k["date"], k["nproc"], k["cpu_model"], k["kernel"], k["haven_commit"], k["cpu"],
                k["load_cpu"], k["runs"], fnum(k["total_s"])))
    s.append("")
    s.append("**Set-up.** Origin: nginx %s (Debian), one process without master on CPU %s, "
             "`sendfile`, keep-alive, no access log, serving two static HTML pages of exactly "
             "1,024 and 51,200 bytes (`text/html`). Requests: `GET http://127.0.0.1:PORT/1k "
             "HTTP/1.1` (absolute form) with `Host`, `User-Agent`, `Accept: */*` and "
             "`Connection: keep-alive`, as browsers ask of a proxy (without it E2Guardian "
             "closes the client connection after each response; it is measured that way too, "
             "for the pages, at %s connections); the block case asks for `http://%s/`, which "
             "both filters list. haven: `haven serve`, "
             "`workers 1`, its access log on (JSON lines), `resolver 127.0.0.1:1` (nothing "
             "can be looked up outside the machine), policy `bench/proxy/policy.conf`. "
             "E2Guardian %s (Debian `e2guardian`), `-N`, with `/etc/e2guardian/*.conf` copied "
             "and changed only in: `%s`. Its access log is on (`loglevel 3`, every request), "
             "as haven's is. `weightedphrasemode = 0` turns off all phrase and content "
             "scanning (weighted, banned and exception phrases, search terms, embedded "
             "links); its other default lists stay as shipped."
             % (k.get("nginx_version", "?"), k["load_cpu"],
                " and ".join(fnum(x) for x in k.get("alt_conns", "").split(",") if x) or "no",
                k["block_host"],
                k.get("e2g_version", "?"), e2g_changes(k["e2g_changes"])))
    s.append("")
    s.append("**Lists.** The same lists as `bench/lookup`: the %s UT1 categories whose `usage` "
             "says `black` and adult-top1m. haven compiles them with `haven lists compile` "
             "(%s distinct entries) and blocks every category they map to. E2Guardian gets "
             "them merged into its group's banned lists, lower-cased and deduplicated: "
             "`bannedsitelist` %s names (from %s domain lines), `bannedsiteiplist` %s "
             "addresses, `bannedurllist` %s URLs. Start-up, to the first answer: haven %s s, "
             "E2Guardian %s s."
             % (k["e2g_black_categories"], fnum(k.get("haven_entries", 0)), fnum(k["e2g_sites"]),
                fnum(k["e2g_domain_lines"]), fnum(k["e2g_site_ips"]), fnum(k["e2g_urls"]),
                fnum(k["haven_ready_s"], 2), fnum(k["e2g_ready_s"], 2)))
    s.append("")
    s.append("**Method.** Throughput: `wrk -t1 -cN -d%ss --latency` with a Lua script that "
             "sets the absolute-form target and the headers, %s runs alternating haven and "
             "E2Guardian, median; the p50 and p99 beside it are wrk's closed-loop latencies at "
             "that saturation. Latency at a fixed rate: wrk2 is not in Debian, so "
             "`bench/proxy/bench_loadgen.c rate` sends the same request bytes open-loop at a "
             "fixed rate (request k is due at t0 + k/rate and goes on the connection idle "
             "longest; its latency counts from when it was due, so a stall is not hidden by "
             "the client waiting, as wrk2 does). The rate is %s%% of the lower of the two "
             "median throughputs for that case and connection count, so both proxies are "
             "below their maximum; %s runs of %s s, the first %s s not recorded, alternating "
             "the two proxies; the median of each percentile over the runs. A response that "
             "ends with the connection (E2Guardian's block page has no length) is followed by "
             "a new connection, whose set-up counts in the next request's latency."
             % (k["seconds"], k["runs"], fnum(100 * f("lat_fraction")), k["runs"],
                fnum(k["lat_seconds"], 1).rstrip("0").rstrip("."),
                fnum(k["lat_warmup"], 1).rstrip("0").rstrip(".")))
    steals = [float(v) for key, v in k.items() if key.endswith("_steal")]
    if steals:
        s.append("")
        s.append("**Noise.** The machine is a virtual one on a shared host: the host's *steal* "
                 "time (our virtual CPU ready to run while the host ran something else) was "
                 "at most %.1f%% of a CPU in any run (median over runs %.1f%%), and other "
                 "engineers' builds and tests may run on the same two CPUs at the same time "
                 "(load average %s before the benchmark started). Figures that vary much "
                 "from run to run, the tails above all, are listed run by run."
                 % (max(steals), statistics.median(steals), k.get("loadavg", "?")))
    s.append("")
    s.append("**The origin alone** (wrk → nginx, both on CPU %s, 16 connections, %s × %s s): "
             "1 KB keep-alive %s req/s; 1 KB with a new connection per request (what a "
             "proxy without keep-alive to the origin asks of it) %s req/s; 50 KB keep-alive %s req/s. CPU %s's load "
             "during each proxy run is in the tables below: where it is far from 100%%, the "
             "proxy's core was the limit."
             % (k["load_cpu"], k["runs"], k["origin_seconds"], fnum(k["origin_1k_ka_rps"]),
                fnum(k["origin_1k_close_rps"]), fnum(k["origin_50k_ka_rps"]), k["load_cpu"]))
    s.append("")
    s.append("### Throughput (req/s, one core)")
    s.append("")
    s.append("| case | conns | haven | E2G, keep-alive | E2G, no keep-alive | **haven ÷ E2G** "
             "(E2G's better) | proxy CPU use: haven / E2G | CPU %s busy: haven / E2G run |"
             % k["load_cpu"])
    s.append("|---|--:|--:|--:|--:|--:|--:|--:|")
    ratios = []
    for case in CASES:
        for c in conns:
            h, e, n = ("%s_%s_%d" % (w, case, c) for w in ("haven", "e2g", "e2gnc"))
            best, mode = best_e2g(k, case, c)
            ratio = f(h + "_rps") / max(1.0, best)
            ratios.append((case, c, ratio))
            eb = e if mode == "ka" else n
            s.append("| %s | %s | **%s** | %s | %s | **%.1f×** | %s%% / %s%% | %s%% / %s%% |" % (
                names[case], fnum(c), fnum(k[h + "_rps"]), fnum(k[e + "_rps"]),
                fnum(k[n + "_rps"]) if n + "_rps" in k else "—", ratio, k[h + "_cpu"],
                k[eb + "_cpu"], k[h + "_busy_load"], k[eb + "_busy_load"]))
    s.append("")
    s.append("wrk's latency at saturation and the size of each response (headers included):")
    s.append("")
    s.append("| case | conns | haven p50 / p99 | E2G keep-alive p50 / p99 | E2G no keep-alive "
             "p50 / p99 | bytes: haven / E2G |")
    s.append("|---|--:|--:|--:|--:|--:|")
    pm = lambda key: "%s / %s ms" % (fnum(k[key + "_wrk_p50_ms"], 2 if f(key + "_wrk_p50_ms") < 10
                                          else 0),
                                     fnum(k[key + "_wrk_p99_ms"], 1 if f(key + "_wrk_p99_ms") < 10
                                          else 0))
    for case in CASES:
        for c in conns:
            h, e, n = ("%s_%s_%d" % (w, case, c) for w in ("haven", "e2g", "e2gnc"))
            s.append("| %s | %s | %s | %s | %s | %s / %s |" % (
                names[case], fnum(c), pm(h), pm(e), pm(n) if n + "_rps" in k else "—",
                fnum(k[h + "_resp_bytes"]), fnum(k[e + "_resp_bytes"])))
    s.append("")
    runs_txt = "; ".join("%s/%s: haven %s, E2G %s%s" % (
        case, c, k["haven_%s_%d_rps_all" % (case, c)].replace(",", ", "),
        k["e2g_%s_%d_rps_all" % (case, c)].replace(",", ", "),
        (" (no keep-alive %s)" % k["e2gnc_%s_%d_rps_all" % (case, c)].replace(",", ", "))
        if "e2gnc_%s_%d_rps_all" % (case, c) in k else "")
        for case in CASES for c in conns)
    s.append("Each run (req/s): %s." % runs_txt)
    s.append("")
    c0 = conns[0]
    if "e2gnc_1k_%d_rps" % c0 in k and g("e2g_1k_%d_wrk_p50_ms" % c0) >= 30 \
            and g("e2g_1k_%d_cpu" % c0) < 50:
        s.append("**E2Guardian with keep-alive at %d connections** is not limited by its "
                 "CPU (%s%% of a core) but by a wait of about 40 ms in every request after a "
                 "connection's first (wrk's median %s ms). Traced with strace on this "
                 "machine: on the upstream connection it reuses, E2Guardian sends the request "
                 "line and the rest of the head in two `send()` calls on a socket without "
                 "`TCP_NODELAY`, so the second waits for the origin's delayed ACK (40 ms on "
                 "Linux; a connection's first request is not delayed because a new "
                 "connection acknowledges at once). Browsers ask proxies for keep-alive, so "
                 "they meet this too; without keep-alive E2Guardian closes the client "
                 "connection after each response, opens a new upstream one, and is faster "
                 "at low connection counts. The ratios use whichever of the two was faster "
                 "for E2Guardian, and so does the latency table."
                 % (c0, k["e2g_1k_%d_cpu" % c0], fnum(k["e2g_1k_%d_wrk_p50_ms" % c0], 0)))
        s.append("")
    s.append("The block pages differ: haven answers `%s` with its own page (%s bytes, "
             "`Content-Length`, the connection kept); E2Guardian answers `%s` with its "
             "default template (%s bytes, no length, so it closes the connection after each "
             "one and wrk opens a new one, counting a read error each time)."
             % (k["haven_block_status"], fnum(k["haven_block_bytes"]), k["e2g_block_status"],
                fnum(k["e2g_block_bytes"])))
    s.append("")
    s.append("### Latency at a fixed rate")
    s.append("")
    if "origin_ka_fixed_p50_us" in k:
        s.append("The origin alone at %s req/s over %s connections (the rate of the first row; "
                 "client and nginx on CPU %s), for the machine's own jitter: keep-alive p50 %s, "
                 "p99 %s, p99.9 %s; a new connection per request p50 %s, p99 %s, p99.9 %s."
                 % (fnum(k["origin_ka_fixed_rate_target"]),
                    fnum(k["origin_fixed_case"].split("_")[1]), k["load_cpu"],
                    lat(k["origin_ka_fixed_p50_us"]), lat(k["origin_ka_fixed_p99_us"]),
                    lat(k["origin_ka_fixed_p999_us"]), lat(k["origin_close_fixed_p50_us"]),
                    lat(k["origin_close_fixed_p99_us"]), lat(k["origin_close_fixed_p999_us"])))
        s.append("")
    s.append("| case | conns | rate | haven p50 | p99 | p99.9 | E2Guardian p50 | p99 | p99.9 | "
             "E2G requests | lower p99 | CPU per request: haven / E2G |")
    s.append("|---|--:|--:|--:|--:|--:|--:|--:|--:|---|---|--:|")
    p99_ok = []

    def cpu_pair(h, e):
        if h + "cpu_us" not in k:
            return ""
        return "%s / %s µs (%.1f×)" % (fnum(k[h + "cpu_us"]), fnum(k[e + "cpu_us"]),
                                       g(e + "cpu_us") / max(1.0, g(h + "cpu_us")))

    for case in CASES:
        for c in conns:
            h, e = "haven_%s_%d_fixed_" % (case, c), "e2g_%s_%d_fixed_" % (case, c)
            better = g(h + "p99_us") < g(e + "p99_us")
            p99_ok.append(better)
            bad = []
            for who, pre in (("haven", h), ("E2G", e)):
                lost = int(g(pre + "failed")) + int(g(pre + "unfinished"))
                if lost:
                    bad.append("%s %d failed" % (who, lost))
            s.append("| %s | %s | %s/s | %s | %s | %s | %s | %s | %s | %s | %s%s | %s |" % (
                names[case], fnum(c), fnum(k[h + "rate_target"]), lat(k[h + "p50_us"]),
                lat(k[h + "p99_us"]), lat(k[h + "p999_us"]), lat(k[e + "p50_us"]),
                lat(k[e + "p99_us"]), lat(k[e + "p999_us"]),
                "keep-alive" if k.get(e + "mode") == "ka" else "no keep-alive",
                "haven" if better else "E2G",
                " (%s)" % ", ".join(bad) if bad else "", cpu_pair(h, e)))
    s.append("")
    if "haven_1k_%d_fixed_p99_us_all" % conns[0] in k:
        s.append("p99 of each run (ms): %s." % "; ".join(
            "%s/%s haven %s, E2G %s" % (
                case, c,
                ", ".join(fnum(float(x) / 1000, 1)
                          for x in k["haven_%s_%d_fixed_p99_us_all" % (case, c)].split(",")),
                ", ".join(fnum(float(x) / 1000, 1)
                          for x in k["e2g_%s_%d_fixed_p99_us_all" % (case, c)].split(",")))
            for case in CASES for c in conns))
        s.append("")
    s.append("### Memory")
    s.append("")
    n_idle = int(k["haven_idle_n"])
    s.append("| | haven | E2Guardian |")
    s.append("|---|--:|--:|")
    mib = lambda kb: fnum(float(kb) / 1024, 1) + " MiB"
    s.append("| RSS idle after start (first answer + 0.5 s) | %s | %s |" % (
        mib(k["haven_rss_start_kb"]), mib(k["e2g_rss_start_kb"])))
    s.append("| threads | %s | %s |" % (k["haven_threads_start"], k["e2g_threads_start"]))
    s.append("| RSS with %s idle keep-alive connections (each after one request) | %s "
             "(%s before) | %s (%s before) |" % (
                 fnum(n_idle), mib(k["haven_idle_rss_during_kb"]),
                 mib(k["haven_idle_rss_before_kb"]), mib(k["e2g_idle_rss_during_kb"]),
                 mib(k["e2g_idle_rss_before_kb"])))
    s.append("| **RSS per idle connection** | **%s bytes** | %s bytes |" % (
        fnum(k["haven_idle_bytes_per_conn"]), fnum(k["e2g_idle_bytes_per_conn"])))
    s.append("| peak RSS under %s connections (sampled every 0.1 s) | %s | %s |" % (
        fnum(conns[-1]), mib(k["haven_rss_1000_kb"]), mib(k["e2g_rss_1000_kb"])))
    s.append("| peak RSS of the whole run (`VmHWM`) | %s | %s |" % (
        mib(k["haven_hwm_kb"]), mib(k["e2g_hwm_kb"])))
    s.append("")
    s.append("The idle connections were opened on a freshly started proxy (before any load, "
             "so that freed memory from earlier connections cannot hide the cost); %s of %s "
             "stayed open for haven, %s of %s for E2Guardian. RSS counts user-space memory "
             "only; the kernel's socket buffers are not in it. E2Guardian's %s worker "
             "threads are created at start (`httpworkers = 1100`), so its idle cost is paid "
             "before the first connection."
             % (k["haven_idle_open"], fnum(n_idle), k["e2g_idle_open"], fnum(n_idle),
                k["e2g_threads_start"]))
    s.append("")
    s.append("### CONNECT tunnel")
    s.append("")
    tb = int(k["tunnel_bytes"])
    s.append("One connection carries %s GiB from a client (`bench_loadgen tunnel`, "
             "`sendfile()` from a memory file) through the proxy to a sink (`bench_loadgen "
             "sink`, `recv(MSG_TRUNC)`, no copy), which answers with the count it received; "
             "time from the first byte to that answer, %s runs, median. Client and sink on "
             "CPU %s, the relay or proxy on CPU %s. The plain relays are "
             "`bench/proxy/bench_relay.c`: `rw` copies through 64 KiB buffers with "
             "read()/write(), `splice` moves pages through a 1 MiB pipe."
             % (fnum(tb / 2 ** 30, 0 if tb % 2 ** 30 == 0 else 2), k["runs"], k["load_cpu"],
                k["cpu"]))
    s.append("")
    s.append("| path | GB/s | haven ÷ this |")
    s.append("|---|--:|--:|")
    hv = f("tunnel_haven_gbps")
    for name, title in (("direct", "client → sink, no relay (the ceiling of CPU %s)"
                         % k["load_cpu"]),
                        ("relay_rw", "plain relay, read/write"),
                        ("relay_splice", "plain relay, splice"),
                        ("e2g", "E2Guardian CONNECT"), ("haven", "**haven CONNECT**")):
        v = f("tunnel_%s_gbps" % name)
        s.append("| %s | %s | %s |" % (title, fnum(v, 2),
                                       "" if name == "haven" else "%.0f%%" % (100 * hv / v)))
    s.append("")
    s.append("Each run (GB/s, 10⁹ bytes): %s." % "; ".join(
        "%s %s" % (n, k["tunnel_%s_gbps_all" % n].replace(",", ", "))
        for n in ("direct", "relay_rw", "relay_splice", "e2g", "haven")))
    s.append("")
    s.append("### Against the goals")
    s.append("")
    s.append("| goal | measured | |")
    s.append("|---|---|---|")
    worst = min(ratios, key=lambda r: r[2])
    s.append("| ≥ 5× E2Guardian's req/s | %s (lowest: %s, %s connections) | %s |" % (
        ", ".join("%s/%s %.1f×" % (c, fnum(n), r) for c, n, r in ratios), names[worst[0]],
        fnum(worst[1]), ok(worst[2] >= 5)))
    s.append("| lower p99 than E2Guardian at the same fixed rate | in %d of %d cases | %s |" % (
        sum(p99_ok), len(p99_ok), ok(all(p99_ok))))
    rel_rw, rel_sp = hv / f("tunnel_relay_rw_gbps"), hv / f("tunnel_relay_splice_gbps")
    s.append("| tunnel ≥ 90%% of the plain relay | %.0f%% of read/write, %.0f%% of splice | "
             "%s (read/write), %s (splice) |" % (100 * rel_rw, 100 * rel_sp, ok(rel_rw >= 0.9),
                                                 ok(rel_sp >= 0.9)))
    s.append("| ≤ 10 KB RSS per idle connection | %s bytes | %s |" % (
        fnum(k["haven_idle_bytes_per_conn"]), ok(f("haven_idle_bytes_per_conn") <= 10240)))
    s.append("")
    s += profile_section(k)
    s.append(END)
    section = "\n".join(s) + "\n"
    doc = Path(a.doc)
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        pre, rest = text.split(BEGIN, 1)
        post = rest.split(END, 1)[1].lstrip("\n")
        text = pre + section + ("\n" + post if post else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    doc.write_text(text)
    print("ratio_min=%.2f" % worst[2])


def profile_section(k):
    """Where haven's time goes, from the strace and perf figures (when they were taken)."""
    s = ["### Where haven's time goes", ""]
    g = lambda key, d=0.0: float(k[key]) if key in k and k[key] not in ("", "nan") else d
    if "diag_haven_1k_16_rps" in k:
        on, off = g("diag_haven_1k_16_rps"), g("diag_havennolog_1k_16_rps")
        s.append("- **Access log.** The same 1 KB load (16 connections, %s × %s s, alternating) "
                 "with the access log on: %s req/s (runs: %s); a second haven with "
                 "`access-log \"\"`: %s req/s (runs: %s), %+.0f%%."
                 % (k["runs"], k["diag_seconds"], fnum(on),
                    k["diag_haven_1k_16_rps_all"].replace(",", ", "), fnum(off),
                    k["diag_havennolog_1k_16_rps_all"].replace(",", ", "),
                    100 * (off - on) / max(1.0, on)))
    if "diag_haven_fixed_cpu_us" in k:
        on, off = g("diag_haven_fixed_cpu_us"), g("diag_havennolog_fixed_cpu_us")
        s.append("  At a fixed %s req/s (16 connections, %s runs each, alternating), the CPU "
                 "time haven's process used per request (all threads, from `/proc`): %s µs "
                 "with the log (runs: %s), %s µs without (runs: %s), %+.0f%%; p99 %s with, "
                 "%s without."
                 % (fnum(k["diag_haven_fixed_rate_target"]), k["runs"], fnum(on),
                    k["diag_haven_fixed_cpu_us_all"].replace(",", ", "), fnum(off),
                    k["diag_havennolog_fixed_cpu_us_all"].replace(",", ", "),
                    100 * (off - on) / max(1.0, on), lat(k["diag_haven_fixed_p99_us"]),
                    lat(k["diag_havennolog_fixed_p99_us"])))
    if "strace_requests" in k:
        calls = sorted(((g(key), key[7:]) for key in k
                        if key.startswith("strace_") and not key.endswith("_pct")
                        and key != "strace_requests"), reverse=True)
        total = sum(c for c, _ in calls)
        s.append("- **System calls per proxied 1 KB request** (`strace -c -f` on haven for "
                 "%s requests at 1,000 req/s, 16 connections): %.1f in all — %s."
                 % (fnum(k["strace_requests"]), total,
                    ", ".join("%s %.2f" % (name, c) for c, name in calls if c >= 0.05)))
        notes = []
        if g("strace_connect") >= 0.9:
            notes.append("a new TCP connection to the origin for every request (`socket`, "
                         "`setsockopt`, `connect`, `getsockopt` for its result, `close`): "
                         "the upstream keep-alive pool is not there yet (`upstream-pool` is "
                         "parsed but the proxy closes each upstream connection after its "
                         "response)")
        if g("strace_getrandom") >= 0.9:
            notes.append("one `getrandom` per request for the reference id that only a "
                         "block, warn or error page shows")
        if g("strace_futex") >= 1.0:
            notes.append("%.1f `futex` calls per request: each access-log record wakes the "
                         "log writer thread (`queue_push` signals the condition variable "
                         "whenever the writer waits, and it is usually waiting), so every "
                         "request costs a thread wake-up and a context switch on the same "
                         "core" % g("strace_futex"))
        if g("strace_write") >= 2.5:
            notes.append("%.1f `write` calls per request: the request head to the origin, "
                         "then the response head and the body to the client as two separate "
                         "writes (two segments, two wake-ups of the client)" % g("strace_write"))
        if g("strace_epoll_ctl") >= 3:
            notes.append("%.1f `epoll_ctl` calls per request (libuv adding and removing "
                         "the read interest of the client and origin sockets as each exchange "
                         "starts and ends)"
                         % g("strace_epoll_ctl"))
        for n in notes:
            s.append("  - %s;" % n)
        if notes:
            s[-1] = s[-1][:-1] + "."
    if "perf_req_rps" in k:
        dso = sorted(((g(key), key[len("perf_req_dso_"):]) for key in k
                      if key.startswith("perf_req_dso_")), reverse=True)
        kk = lambda sym: g("perf_req_k_" + sym)
        s.append("- **perf** (`perf record -g -F 999 -p` haven, 1 KB, 16 connections, wrk; "
                 "%s req/s while recording). Samples by where they land: %s. Inclusive "
                 "shares of the kernel paths: system calls %.0f%% — `write` %.0f%%, "
                 "`connect` %.0f%%, `close` %.0f%%, `read` %.0f%%, `futex` %.0f%%, `epoll_ctl` "
                 "%.0f%%, `epoll_wait` %.0f%%, `socket` %.0f%%; `schedule` (context switches) "
                 "%.0f%%. On loopback the sender's system call also delivers the segment to "
                 "the receiving socket (`net_rx_action`, %.0f%% of all samples, under `write`, "
                 "`connect` and `close`) and wakes the reader (`sock_def_readable` %.0f%%), so "
                 "each segment haven sends costs it the receiver's TCP work too."
                 % (fnum(k["perf_req_rps"]),
                    ", ".join("%s %.0f%%" % (d, v) for v, d in dso if v >= 1),
                    kk("entry_SYSCALL_64_after_hwframe"), kk("ksys_write"),
                    kk("__x64_sys_connect"), kk("__x64_sys_close"),
                    kk("ksys_read"), kk("__x64_sys_futex"), kk("__x64_sys_epoll_ctl"),
                    kk("__x64_sys_epoll_wait"), kk("__x64_sys_socket"), kk("schedule"),
                    kk("net_rx_action"), kk("sock_def_readable")))
        users = k.get("perf_req_user", [])
        if users:
            s.append("  Top user-space symbols (self): %s." % "; ".join(
                "`%s` (%s) %s%%" % (u.split()[2], u.split()[1], u.split()[0]) for u in users[:8]))
        s.append("  The machine is a virtual one without hardware counters, so perf samples "
                 "with the `cpu-clock` timer; samples taken with interrupts off are charged "
                 "to the place that turns them back on (`_raw_spin_unlock_irqrestore`, "
                 "usually in the wake-up of another task), which makes the self figures of "
                 "kernel functions unreliable, but the inclusive shares of the system calls "
                 "above are not affected.")
    if "perf_tunnel_gbps" in k:
        dso = sorted(((g(key), key[len("perf_tunnel_dso_"):]) for key in k
                      if key.startswith("perf_tunnel_dso_")), reverse=True)
        kk = lambda sym: g("perf_tunnel_k_" + sym)
        users = k.get("perf_tunnel_user", [])
        copy = sum(float(u.split()[0]) for u in users
                   if "memmove" in u.split()[2] or "memcpy" in u.split()[2])
        alloc = sum(float(u.split()[0]) for u in users
                    if re.search(r"malloc|free|_int_|cfree", u.split()[2]))
        why = ""
        if copy >= 2:
            why = (" The user-space copy (%.0f%% of the samples%s) is `proxy_send`: haven "
                   "reads each 64 KiB into a per-thread buffer, then "
                   "allocates a write request of the same size, copies the bytes into it and "
                   "queues it with `uv_write` (freed when written), one more copy and a "
                   "malloc/free per 64 KiB than the read/write relay, which writes straight "
                   "from its read buffer; nothing is spliced."
                   % (copy, ", the allocator %.1f%%" % alloc if alloc >= 0.5 else ""))
        s.append("- **Tunnel** (perf during one %s GiB tunnel, %s GB/s while recording): "
                 "samples %s; `read` %.0f%%, `write` %.0f%%, `epoll_wait` %.0f%%. Top "
                 "user-space symbols: %s.%s"
                 % (fnum(int(k["tunnel_bytes"]) / 2 ** 30, 2).rstrip("0").rstrip("."),
                    fnum(k["perf_tunnel_gbps"], 2),
                    ", ".join("%s %.0f%%" % (d, v) for v, d in dso if v >= 1),
                    kk("ksys_read"), kk("ksys_write"), kk("__x64_sys_epoll_wait"),
                    "; ".join("`%s` (%s) %s%%" % (u.split()[2], u.split()[1], u.split()[0])
                              for u in users[:6]) or "none", why))
    s.append("")
    return s if len(s) > 3 else []


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("lists")
    p.add_argument("data")
    p.add_argument("outdir")
    p.set_defaults(fn=cmd_lists)
    p = sub.add_parser("measure")
    p.add_argument("--work", required=True)
    p.add_argument("--haven", required=True)
    p.add_argument("--loadgen", required=True)
    p.add_argument("--relay", required=True)
    p.add_argument("--policy", required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--e2g-etc", default="/etc/e2guardian")
    p.add_argument("--cpu", type=int, default=1)
    p.add_argument("--load-cpu", type=int, default=0)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--origin-seconds", type=int, default=2)
    p.add_argument("--conns", default="16,1000")
    p.add_argument("--alt-conns", default="16")
    p.add_argument("--lat-seconds", type=float, default=3)
    p.add_argument("--lat-warmup", type=float, default=0.5)
    p.add_argument("--lat-fraction", type=float, default=0.5)
    p.add_argument("--idle-conns", type=int, default=1000)
    p.add_argument("--tunnel-bytes", type=int, default=4 * 2 ** 30)
    p.add_argument("--profile", type=int, default=1)
    p.add_argument("--diag-seconds", type=int, default=4)
    p.add_argument("--perf", default="")
    p.add_argument("--strace", default="")
    p.set_defaults(fn=cmd_measure)
    p = sub.add_parser("report")
    p.add_argument("results")
    p.add_argument("doc")
    p.set_defaults(fn=cmd_report)
    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
