#!/usr/bin/python3
"""Helpers of bench/dns/run: haven's DNS filter beside Unbound 1.17 and dnsmasq 2.90.

    dns.py lists DATA WORK [--queries N]   the blocked names (and each peer's configuration
                                           of them), the allowed names, the query files
    dns.py measure --work W ...            start everything, measure, write W/results.txt
    dns.py report RESULTS DOC              rewrite the bench/dns section of DOC

lists and measure print key=value lines (measure appends them to W/results.txt) and
progress on standard error. Everything listens on 127.0.0.1 only, on ports the kernel
picks; nothing is fetched, and every server forwards only to the local stub.
"""

import argparse
import lzma
import os
import random
import re
import resource
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

# The filters under test, in the order they are started and measured. "ceiling" is the
# server that answers everything at no cost (bench_dnsecho) on the servers' CPU: what
# dnsperf itself can drive.
FILTERS = ("haven", "unbound", "dnsmasq")
NAMES = {"haven": "haven", "unbound": "Unbound", "dnsmasq": "dnsmasq",
         "ceiling": "stub (dnsperf's ceiling)"}
STUB_ADDR = "192.0.2.1"  # what the stub answers for every A query (TEST-NET-1)
STUB_TTL = 86400
# dnsperf's ceiling: bench_dnsecho (bench/dns/bench_dnsecho.c) when it is built, else a
# second dnsmasq stub (which haven can outrun: then it is no ceiling)
CEILINGS = {"echo": "`bench_dnsecho` (bench/dns/bench_dnsecho.c: answers each A query from "
                    "the query itself, the stub's answer, no lookup, 64 datagrams a system "
                    "call)",
            "dnsmasq": "a second dnsmasq stub like the upstream (answering everything, "
                       "uncached)"}
CEILING_NAMES = {"echo": "bench_dnsecho (dnsperf's ceiling)",
                 "dnsmasq": "stub (dnsperf's ceiling)"}
PROBE_BLOCKED = "www.pornhub.com"  # in adult-top1m: every filter blocks it


def say(msg):
    sys.stderr.write("bench/dns: %s\n" % msg)
    sys.stderr.flush()


def die(msg):
    say(msg)
    sys.exit(1)


# --------------------------------------------------------------------------------------------
# Lists


IPV4 = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
LABEL = re.compile(r"^[a-z0-9_-]{1,63}$")


def xz_lines(path):
    with lzma.open(path, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if line:
                yield line


def dns_name(line):
    """The line as a lower-case DNS name without the dots at its ends, or None when it is no
    name (a bare IPv4 address, a label too long, a character DNS names do not carry)."""
    name = line.lower().strip(".")
    if not name or len(name) > 253 or IPV4.match(name):
        return None
    if not all(LABEL.match(label) for label in name.split(".")):
        return None
    return name


def listed(name, blocked):
    """Is NAME or a name above it (at a label boundary) in BLOCKED? All three filters block
    a listed name and every name below it."""
    labels = name.split(".")
    return any(".".join(labels[i:]) in blocked for i in range(len(labels)))


def cmd_lists(a):
    data, work = Path(a.data), Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    files = sorted((data / "ut1").glob("*/domains.xz")) + [data / "adult-top1m" / "domains.xz"]
    lines = ipv4 = other = 0
    blocked = set()
    rejected = []
    for path in files:
        for line in xz_lines(path):
            lines += 1
            name = dns_name(line)
            if name is not None:
                blocked.add(name)
            elif IPV4.match(line):
                ipv4 += 1
            else:
                other += 1
                rejected.append("%s: %s" % (path.relative_to(data), line))
    names = sorted(blocked)
    (work / "blocked.txt").write_text("\n".join(names) + "\n")
    (work / "rejected.txt").write_text("\n".join(rejected) + ("\n" if rejected else ""))
    with open(work / "unbound-blocked.conf", "w") as f:
        f.write("server:\n")
        for n in names:
            f.write('local-zone: "%s." always_nxdomain\n' % n)
    with open(work / "dnsmasq-blocked.conf", "w") as f:
        for n in names:
            f.write("address=/%s/\n" % n)

    top = data / "top-sites" / "majestic_million-top15000.csv.xz"
    sites, seen = [], set()
    for i, line in enumerate(xz_lines(top)):
        if i == 0:
            continue  # the header row
        cells = line.split(",")
        name = dns_name(cells[2]) if len(cells) > 2 and not cells[2].startswith(".") else None
        if name is not None and name not in seen:
            seen.add(name)
            sites.append(name)
    allowed = [n for n in sites if not listed(n, blocked)]
    if PROBE_BLOCKED not in blocked:
        die("%s is not in the lists: the probe needs another name" % PROBE_BLOCKED)
    if not allowed:
        die("no top site is left once the blocked names are taken out")
    (work / "allowed.txt").write_text("".join("%s A\n" % n for n in allowed))

    # The query mix: a fixed seed; 20% blocked names (distinct, drawn from every list),
    # 80% allowed names (uniformly, with repeats: each is in the cache after the warm-up).
    rng = random.Random(42)
    n_blocked = round(a.queries * a.blocked_share)
    sample = rng.sample(names, min(n_blocked, len(names)))
    mix = [(n, "b") for n in sample]
    mix += [(rng.choice(allowed), "a") for _ in range(a.queries - len(sample))]
    rng.shuffle(mix)
    (work / "mix.txt").write_text("".join("%s A\n" % n for n, _ in mix))
    # What each filter must answer: every allowed name NOERROR, every sampled blocked name
    # NXDOMAIN (checked once for each filter before the timed runs).
    (work / "check.txt").write_text("".join("%s A\n" % n for n in allowed + sample))
    (work / "expect.txt").write_text("".join("%s %s\n" % (n, "NOERROR") for n in allowed) +
                                     "".join("%s %s\n" % (n, "NXDOMAIN") for n in sample))
    print("list_files=%d" % len(files))
    print("list_lines=%d" % lines)
    print("list_ipv4_lines=%d" % ipv4)
    print("list_other_rejected=%d" % other)
    print("blocked_names=%d" % len(names))
    print("top_sites=%d" % len(sites))
    print("top_sites_blocked=%d" % (len(sites) - len(allowed)))
    print("allowed_names=%d" % len(allowed))
    print("mix_queries=%d" % len(mix))
    print("mix_blocked=%d" % len(sample))
    print("unbound_conf_bytes=%d" % (work / "unbound-blocked.conf").stat().st_size)
    print("dnsmasq_conf_bytes=%d" % (work / "dnsmasq-blocked.conf").stat().st_size)


# --------------------------------------------------------------------------------------------
# DNS on the wire (just enough to probe)


def query_bytes(qid, name, qtype=1):
    q = b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0"
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q + struct.pack(">HH", qtype, 1)


RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def ask(port, name, timeout=2.0, tries=3):
    """(rcode name, answer count, the bytes) of an A query over UDP, asked up to TRIES times,
    or (None, 0, b"") when no answer came."""
    for _ in range(tries):
        got = ask_once(port, name, timeout)
        if got[0] is not None:
            return got
    return None, 0, b""


def ask_once(port, name, timeout):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        qid = random.randrange(65536)
        s.sendto(query_bytes(qid, name), ("127.0.0.1", port))
        while True:
            data, _ = s.recvfrom(4096)
            if len(data) >= 12 and struct.unpack(">H", data[:2])[0] == qid:
                flags, _, ancount = struct.unpack(">HHH", data[2:8])
                return RCODES.get(flags & 15, str(flags & 15)), ancount, data
    except OSError:
        return None, 0, b""
    finally:
        s.close()


def wait_nxdomain(port, proc, t0, limit=120.0):
    """Seconds from T0 until the server answers the blocked probe name NXDOMAIN. Queries go
    every 10 ms on one socket; a query sent before the server listens is lost, one sent while
    it loads waits in its socket and is answered when it is ready."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.01)
    qid = 0
    try:
        while time.monotonic() - t0 < limit:
            if proc.p.poll() is not None:
                die("%s exited (%d) before answering; see %s" % (proc.name, proc.p.returncode,
                                                                 proc.log.name))
            qid = (qid + 1) & 0xFFFF
            try:
                s.sendto(query_bytes(qid, PROBE_BLOCKED), ("127.0.0.1", port))
            except OSError:
                pass
            end = time.monotonic() + 0.01
            while time.monotonic() < end:
                try:
                    data = s.recv(4096)
                except OSError:
                    break
                if len(data) >= 12 and (struct.unpack(">H", data[2:4])[0] & 15) == 3:
                    return time.monotonic() - t0
        die("%s did not answer %s NXDOMAIN within %.0f s; see %s"
            % (proc.name, PROBE_BLOCKED, limit, proc.log.name))
    finally:
        s.close()
    return None


# --------------------------------------------------------------------------------------------
# Processes


def free_port():
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        t = socket.socket()
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            u.close()
            t.close()
    die("no free port")
    return 0


class Proc:
    """A process we started, pinned to a CPU, stopped by its own PID."""

    def __init__(self, name, cmd, cpu, log, cwd=None):
        self.name = name
        self.log = open(log, "ab")
        self.t0 = time.monotonic()
        self.p = subprocess.Popen(["taskset", "-c", str(cpu)] + cmd, stdout=self.log,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd)
        self.pid = self.p.pid  # taskset execs the command: same PID

    def stop(self, grace=5.0):
        if self.p.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
                self.p.wait(grace)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.p.wait()
        self.log.close()


def status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


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


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])


# --------------------------------------------------------------------------------------------
# dnsperf


def parse_dnsperf(out):
    """The statistics block of dnsperf's output as a dict."""
    r = {}
    m = re.search(r"Queries sent:\s+(\d+)", out)
    r["sent"] = int(m.group(1)) if m else 0
    m = re.search(r"Queries completed:\s+(\d+)", out)
    r["completed"] = int(m.group(1)) if m else 0
    m = re.search(r"Queries lost:\s+(\d+)", out)
    r["lost"] = int(m.group(1)) if m else 0
    m = re.search(r"Queries per second:\s+([\d.]+)", out)
    r["qps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"Run time \(s\):\s+([\d.]+)", out)
    r["runtime"] = float(m.group(1)) if m else 0.0
    m = re.search(r"Average Latency \(s\):\s+([\d.]+)", out)
    r["avg_lat"] = float(m.group(1)) if m else 0.0
    m = re.search(r"Response codes:\s+(.*)", out)
    codes = {}
    if m:
        for code, n in re.findall(r"([A-Z]+) (\d+) \(", m.group(1)):
            codes[code] = int(n)
    r["codes"] = codes
    r["loss"] = 100.0 * r["lost"] / r["sent"] if r["sent"] else 100.0
    return r


def verbose_lines(out):
    """(rcode, name, latency in seconds) of each answered query in dnsperf -v output."""
    for m in re.finditer(r"^> (\S+) (\S+) \S+ ([\d.]+)$", out, re.M):
        yield m.group(1), m.group(2), float(m.group(3))


def pct(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    i = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[i]


class Bench:
    def __init__(self, a):
        self.a = a
        self.work = Path(a.work)
        (self.work / "logs").mkdir(parents=True, exist_ok=True)
        self.res = open(self.work / "results.txt", "a")
        self.procs = {}
        self.ports = {}
        self.active = ["ceiling"]  # the servers measured: the ceiling stub, then the filters

    def put(self, k, v):
        self.res.write("%s=%s\n" % (k, v))
        self.res.flush()

    def dnsperf(self, port, datafile, args, tag):
        cmd = ["taskset", "-c", str(self.a.load_cpu), "dnsperf", "-s", "127.0.0.1",
               "-p", str(port), "-d", str(datafile)] + [str(x) for x in args]
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run(cmd, capture_output=True, text=True)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.gen_cpu_s = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        log = self.work / "logs" / ("dnsperf-%s.log" % tag)
        with open(log, "a") as f:
            f.write("$ %s\n" % " ".join(cmd))
            # per-query lines (-v) go to a file of their own; the summary stays readable
            f.write("\n".join(l for l in out.stdout.splitlines() if not l.startswith("> ")))
            f.write("\n%s\n" % out.stderr)
        if out.returncode != 0:
            die("dnsperf failed (%s): %s" % (tag, (out.stderr or out.stdout).strip()[-500:]))
        return out.stdout

    # ----------------------------------------------------------------------------------------

    def configs(self):
        a, w = self.a, self.work
        for k in ("stub", "ceiling", "haven", "haven_http", "unbound", "dnsmasq"):
            self.ports[k] = free_port()
        if len(set(self.ports.values())) != len(self.ports):
            die("the kernel gave the same free port twice; run again")
        (w / "unbound").mkdir(exist_ok=True)
        (w / "haven-var").mkdir(exist_ok=True)
        (w / "unbound" / "unbound.conf").write_text(
            "# bench/dns: Unbound on one core, forwarding to the local stub\n"
            "server:\n"
            "    interface: 127.0.0.1\n"
            "    port: %d\n"
            "    do-ip6: no\n"
            "    num-threads: 1\n"
            "    chroot: \"\"\n"
            "    username: \"\"\n"
            "    directory: \"%s\"\n"
            "    pidfile: \"%s\"\n"
            "    use-syslog: no\n"
            "    logfile: \"\"\n"
            "    verbosity: 1\n"
            "    module-config: \"iterator\"\n"
            "    do-not-query-localhost: no\n"
            "    access-control: 127.0.0.0/8 allow\n"
            "    include: \"%s\"\n"
            "remote-control:\n"
            "    control-enable: no\n"
            "forward-zone:\n"
            "    name: \".\"\n"
            "    forward-addr: 127.0.0.1@%d\n"
            % (self.ports["unbound"], w / "unbound", w / "unbound" / "unbound.pid",
               w / "unbound-blocked.conf", self.ports["stub"]))
        (w / "haven.conf").write_text(
            "# bench/dns: haven serve on one core, its DNS filter forwarding to the local stub\n"
            "listen 127.0.0.1:%d\nworkers 1\npolicy %s\ndatabase %s\ndata-dir %s\n"
            "access-log \"\"\nresolver 127.0.0.1:%d\n"
            "dns-listen 127.0.0.1:%d\ndns-upstream 127.0.0.1:%d\ndns-rate-limit 0\n"
            % (self.ports["haven_http"], a.policy, a.db, w / "haven-var", self.ports["stub"],
               self.ports["haven"], self.ports["stub"]))
        for k, v in self.ports.items():
            self.put("port_" + k, v)

    def stub_cmd(self, port):
        # dnsmasq as an authoritative stub: every A query answered 192.0.2.1 from its own
        # configuration, no cache, no upstream; TTL one day, so the filters cache the answers.
        return ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
                "--no-hosts", "--no-poll", "--port=%d" % port, "--listen-address=127.0.0.1",
                "--bind-interfaces", "--address=/#/%s" % STUB_ADDR,
                "--local-ttl=%d" % STUB_TTL, "--cache-size=0", "--pid-file=", "--user=root",
                "--log-facility=-"]

    def server_cmd(self, name):
        a, w = self.a, self.work
        if name == "haven":
            return [a.haven, "serve", "--config", str(w / "haven.conf")]
        if name == "unbound":
            return ["unbound", "-d", "-c", str(w / "unbound" / "unbound.conf")]
        if name == "dnsmasq":
            # The filter under test: forwards to the stub, caches, blocks the listed names.
            return ["dnsmasq", "--keep-in-foreground", "--conf-file=%s" % (w / "dnsmasq-blocked.conf"),
                    "--no-resolv", "--no-hosts", "--no-poll", "--port=%d" % self.ports["dnsmasq"],
                    "--listen-address=127.0.0.1", "--bind-interfaces",
                    "--server=127.0.0.1#%d" % self.ports["stub"],
                    "--cache-size=%d" % a.dnsmasq_cache, "--pid-file=", "--user=root",
                    "--log-facility=%s" % (w / "logs" / "dnsmasq-syslog.log")]
        if a.echo:
            return [a.echo, "127.0.0.1:%d" % self.ports["ceiling"]]
        return self.stub_cmd(self.ports["ceiling"])

    def start(self, name, cpu):
        p = Proc(name, self.server_cmd(name) if name != "stub" else
                 self.stub_cmd(self.ports["stub"]), cpu, self.work / "logs" / (name + ".log"))
        self.procs[name] = p
        return p

    def stop_all(self):
        for name in list(self.procs)[::-1]:
            self.procs.pop(name).stop()

    # ----------------------------------------------------------------------------------------

    def start_filter(self, name):
        """Start it (alone on its CPU: the others idle), time it to the first NXDOMAIN for a
        blocked name, warm every allowed name through it, check every answer."""
        a = self.a
        port = self.ports[name]
        if name == "haven":
            chk = subprocess.run(self.server_cmd(name) + ["--check-config"],
                                 capture_output=True, text=True)
            if chk.returncode != 0:
                die("haven serve --check-config rejects %s (a haven without the DNS filter? "
                    "build a newer one, or set DNS_FILTERS=unbound,dnsmasq): %s"
                    % (self.work / "haven.conf", (chk.stderr or chk.stdout).strip()))
        say("starting %s on CPU %d" % (NAMES[name], a.cpu))
        p = self.start(name, a.cpu)
        t = wait_nxdomain(port, p, p.t0)
        self.active.append(name)
        self.put("%s_load_s" % name, "%.3f" % t)
        self.put("%s_rss_loaded_kb" % name, status_kb(p.pid, "VmRSS"))
        rc, an, data = ask(port, PROBE_BLOCKED)
        if rc != "NXDOMAIN":
            die("%s answers %s for %s, not NXDOMAIN" % (name, rc, PROBE_BLOCKED))
        first = (self.work / "allowed.txt").read_text().split(" ", 1)[0]
        rc, an, data = ask(port, first)
        if rc != "NOERROR" or an < 1 or socket.inet_aton(STUB_ADDR) not in data:
            die("%s answers %s with %d records for %s, not the stub's %s"
                % (name, rc, an, first, STUB_ADDR))
        # Warm-up: every allowed name once, at a modest rate (dnsmasq forwards at most 150
        # queries at a time), then the check pass over the allowed names and the blocked
        # sample, answers compared with what is expected.
        say("%s: warming %s allowed names" % (NAMES[name], fnum(self.count("allowed.txt"))))
        for _ in range(2):  # the second pass fills in what the first lost, if anything
            self.dnsperf(port, self.work / "allowed.txt",
                         ["-n", 1, "-q", 20, "-Q", a.warm_qps, "-t", 2], "warm-" + name)
        out = self.dnsperf(port, self.work / "check.txt",
                           ["-n", 1, "-q", 20, "-Q", a.warm_qps, "-t", 2, "-v"], "check-" + name)
        got = {}
        for rcode, qname, _ in verbose_lines(out):
            got[qname.rstrip(".").lower()] = rcode
        bad = {"NOERROR": 0, "NXDOMAIN": 0}
        missing, sample = 0, []
        for line in (self.work / "expect.txt").read_text().splitlines():
            qname, want = line.split()
            have = got.get(qname)
            if have is None:
                missing += 1
            elif have != want:
                bad[want] += 1
                if len(sample) < 10:
                    sample.append("%s %s" % (qname, have))
        self.put("%s_check_allowed_not_noerror" % name, bad["NOERROR"])
        self.put("%s_check_blocked_not_nxdomain" % name, bad["NXDOMAIN"])
        self.put("%s_check_unanswered" % name, missing)
        self.put("%s_check_sample" % name, "; ".join(sample))
        if bad["NOERROR"] + bad["NXDOMAIN"] + missing:
            say("%s: %d allowed names not NOERROR, %d blocked not NXDOMAIN, %d unanswered "
                "(e.g. %s)" % (NAMES[name], bad["NOERROR"], bad["NXDOMAIN"], missing,
                               "; ".join(sample[:3])))
        self.put("%s_rss_warm_kb" % name, status_kb(p.pid, "VmRSS"))
        self.put("%s_hwm_warm_kb" % name, status_kb(p.pid, "VmHWM"))
        self.put("%s_threads" % name, status_kb(p.pid, "Threads"))

    def haven_metrics(self):
        """haven's DNS counters from /metrics on its proxy listener (answers by kind)."""
        try:
            with socket.create_connection(("127.0.0.1", self.ports["haven_http"]), 5) as c:
                c.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          b"Connection: close\r\n\r\n")
                data = b""
                while True:
                    chunk = c.recv(65536)
                    if not chunk:
                        break
                    data += chunk
        except OSError as e:
            say("haven's /metrics: %s" % e)
            return
        text = data.decode("utf-8", "replace")
        found = re.findall(r'^haven_dns_queries_total\{answer="(\w+)"\} (\d+)', text, re.M)
        for kind, n in found:
            self.put("haven_dns_%s" % kind, n)
        if not found:
            say("haven's /metrics has no haven_dns_queries_total")

    def count(self, fname):
        with open(self.work / fname) as f:
            return sum(1 for _ in f)

    def max_qps(self):
        a = self.a
        runs = {s: [] for s in self.active}
        for r in range(a.runs):
            for s in self.active:
                say("max qps, run %d/%d: %s" % (r + 1, a.runs, NAMES[s]))
                pid = self.procs[s].pid
                t0 = cpu_ticks(pid)
                c0 = cpu_times()
                out = self.dnsperf(self.ports[s], self.work / "mix.txt",
                                   ["-l", a.seconds, "-c", a.clients, "-q", a.outstanding],
                                   "max-" + s)
                d = parse_dnsperf(out)
                d["cpu"] = 100.0 * (cpu_ticks(pid) - t0) / os.sysconf("SC_CLK_TCK") / max(
                    0.001, d["runtime"])
                d["gen"] = 100.0 * self.gen_cpu_s / max(0.001, d["runtime"])
                c1 = cpu_times()
                for c, key in ((a.cpu, "busy"), (a.load_cpu, "lbusy")):
                    if c in c0 and c in c1:
                        busy, steal, tot = (c1[c][i] - c0[c][i] for i in range(3))
                        d[key] = 100.0 * busy / max(1, tot)
                        d[key + "_steal"] = 100.0 * steal / max(1, tot)
                runs[s].append(d)
        self.maxq = {}
        for s in self.active:
            q = [d["qps"] for d in runs[s]]
            mid = sorted(runs[s], key=lambda d: d["qps"])[len(q) // 2]
            self.maxq[s] = statistics.median(q)
            self.put("%s_max_qps" % s, "%.0f" % statistics.median(q))
            self.put("%s_max_qps_all" % s, ",".join("%.0f" % x for x in q))
            self.put("%s_max_loss_pct" % s, "%.4f" % max(d["loss"] for d in runs[s]))
            self.put("%s_max_cpu_pct" % s, "%.0f" % statistics.median(d["cpu"] for d in runs[s]))
            for key in ("gen", "busy", "lbusy", "busy_steal", "lbusy_steal"):
                vals = [d[key] for d in runs[s] if key in d]
                if vals:
                    self.put("%s_max_%s_pct" % (s, key), "%.0f" % statistics.median(vals))
            self.put("%s_max_avg_lat_us" % s, "%.0f" % (1e6 * mid["avg_lat"]))
            codes = mid["codes"]
            tot = max(1, sum(codes.values()))
            self.put("%s_max_codes" % s, ",".join("%s:%.2f" % (c, 100.0 * n / tot)
                                                  for c, n in sorted(codes.items())))

    def sustained(self):
        """Open loop (-Q) at falling fractions of each server's median max, until a run loses
        less than 0.1%: the highest rate it sustains."""
        a = self.a
        fracs = [float(x) for x in a.sustain_fractions.split(",")]
        for s in self.active:
            steps = []
            for frac in fracs:
                rate = int(self.maxq[s] * frac)
                say("sustained: %s at %d qps" % (NAMES[s], rate))
                d = parse_dnsperf(self.dnsperf(self.ports[s], self.work / "mix.txt",
                                               ["-l", a.seconds, "-c", a.clients, "-q", 5000,
                                                "-t", 1, "-Q", rate], "sustain-" + s))
                steps.append("%d:%.0f:%.4f" % (rate, d["qps"], d["loss"]))
                if d["loss"] < 0.1:
                    self.put("%s_sustain_rate" % s, rate)
                    self.put("%s_sustain_qps" % s, "%.0f" % d["qps"])
                    self.put("%s_sustain_loss_pct" % s, "%.4f" % d["loss"])
                    break
            # every step: rate:answered qps:loss %
            self.put("%s_sustain_steps" % s, ",".join(steps))

    def latency(self):
        a = self.a
        if a.lat_qps > 0:
            rate = a.lat_qps
        else:
            low = min(self.maxq[s] for s in self.active[1:] or ["ceiling"])
            rate = max(1000, int(low * a.lat_fraction) // 1000 * 1000)
        self.put("lat_qps", rate)
        runs = {s: [] for s in self.active}
        for r in range(a.runs):
            for s in self.active:
                say("latency at %d qps, run %d/%d: %s" % (rate, r + 1, a.runs, NAMES[s]))
                out = self.dnsperf(self.ports[s], self.work / "mix.txt",
                                   ["-l", a.lat_seconds, "-c", a.clients, "-q", 5000, "-t", 1,
                                    "-Q", rate, "-v"], "lat-" + s)
                d = parse_dnsperf(out)
                lat = sorted(x[2] for x in verbose_lines(out))
                d["p50"], d["p99"], d["p999"] = (pct(lat, p) for p in (50, 99, 99.9))
                d["max"] = lat[-1] if lat else float("nan")
                runs[s].append(d)
        for s in self.active:
            for k in ("p50", "p99", "p999", "max"):
                vals = [d[k] * 1e6 for d in runs[s]]
                self.put("%s_lat_%s_us" % (s, k), "%.0f" % statistics.median(vals))
                self.put("%s_lat_%s_us_all" % (s, k), ",".join("%.0f" % v for v in vals))
            self.put("%s_lat_qps" % s, "%.0f" % statistics.median(d["qps"] for d in runs[s]))
            self.put("%s_lat_loss_pct" % s, "%.4f" % max(d["loss"] for d in runs[s]))


def cmd_measure(a):
    b = Bench(a)
    b.put("runs", a.runs)
    b.put("seconds", a.seconds)
    b.put("lat_seconds", a.lat_seconds)
    b.put("clients", a.clients)
    b.put("outstanding", a.outstanding)
    b.put("cpu", a.cpu)
    b.put("load_cpu", a.load_cpu)
    b.put("sustain_fractions", a.sustain_fractions)
    b.put("lat_fraction", a.lat_fraction)
    b.put("dnsmasq_cache", a.dnsmasq_cache)
    b.put("warm_qps", a.warm_qps)
    b.configs()
    b.put("ceiling_kind", "echo" if a.echo else "dnsmasq")
    try:
        say("starting the stub upstream on CPU %d, and %s for dnsperf's ceiling on CPU %d"
            % (a.load_cpu, "bench_dnsecho" if a.echo else "a second stub", a.cpu))
        for name, cpu in (("stub", a.load_cpu), ("ceiling", a.cpu)):
            p = b.start(name, cpu)
            port = b.ports[name]
            for _ in range(500):
                if ask_once(port, "probe.bench.invalid", 0.05)[0] == "NOERROR":
                    break
                if p.p.poll() is not None:
                    die("the %s dnsmasq exited; see %s" % (name, p.log.name))
            else:
                die("the %s dnsmasq does not answer" % name)
        for s in a.filters.split(","):
            b.start_filter(s)
        b.max_qps()
        b.sustained()
        b.latency()
        for s in b.active[1:]:
            b.put("%s_rss_end_kb" % s, status_kb(b.procs[s].pid, "VmRSS"))
            b.put("%s_hwm_end_kb" % s, status_kb(b.procs[s].pid, "VmHWM"))
        if "haven" in b.active:
            b.haven_metrics()
    finally:
        b.stop_all()
    # Unbound prints its counters when it stops: how many queries went to the upstream.
    log = b.work / "logs" / "unbound.log"
    if log.exists():
        m = re.search(r"server stats for thread 0: (\d+) queries, (\d+) answers from cache, "
                      r"(\d+) recursions", log.read_text(errors="replace"))
        if m:
            b.put("unbound_queries", m.group(1))
            b.put("unbound_recursions", m.group(3))


# --------------------------------------------------------------------------------------------
# Report


BEGIN, END = "<!-- bench/dns begin -->", "<!-- bench/dns end -->"


def load_kv(path):
    kv = {}
    for line in Path(path).read_text().splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            kv[k] = v
    return kv


def fnum(x, digits=0):
    return "{:,.{}f}".format(float(x), digits)


def shared_note(k, servers):
    """A sentence when the servers had their CPU only part of the time in the max-qps runs."""
    own = [(float(k[x + "_max_cpu_pct"]), float(k.get(x + "_max_busy_pct", 0)), x)
           for x in servers if x + "_max_cpu_pct" in k]
    if not own or min(o[0] for o in own) >= 80 or max(o[1] for o in own) < 95:
        return ""
    span = lambda lo, hi: "%.0f" % lo if round(lo) == round(hi) else "%.0f–%.0f" % (lo, hi)
    return (" In this run CPU %s was %s%% busy during the max-qps runs while the "
            "servers' own CPU time was %s%% of a CPU: other processes had the rest, "
            "so these figures are not a quiet machine's, and a server with more threads "
            "(see the threads row) gets a larger share of a contended CPU."
            % (k["cpu"], span(min(o[1] for o in own), max(o[1] for o in own)),
               span(min(o[0] for o in own), max(o[0] for o in own))))


def runs_text(n):
    return "1 run" if str(n) == "1" else "%s runs" % n


def mib(kb):
    return "%.1f MiB" % (float(kb) / 1024)


def lat(us):
    us = float(us)
    if us != us:
        return "—"
    if us < 1000:
        return "%.0f µs" % us
    if us < 10000:
        return "%.2f ms" % (us / 1000)
    return "%.1f ms" % (us / 1000)


def cmd_report(a):
    k = load_kv(a.results)
    f = lambda key: float(k[key])
    ok = lambda c: "**met**" if c else "**missed**"
    have = [s for s in FILTERS if s + "_max_qps" in k]
    cols = [s for s in ("haven", "unbound", "dnsmasq") if s in have]
    s = [BEGIN, "## DNS filter: haven vs Unbound and dnsmasq (`bench/dns/run`)", ""]
    s.append("Run %s on %s CPUs (%s, %s); haven %s. Each server pinned to CPU %s with "
             "`taskset` (haven `workers 1`, Unbound `num-threads: 1`, dnsmasq is single-"
             "threaded); dnsperf %s and the upstream stub on CPU %s. %s per figure, "
             "alternating the servers, median. Whole benchmark: %s s."
             % (k["date"], k["nproc"], k["cpu_model"], k["kernel"], k["haven_commit"], k["cpu"],
                k.get("dnsperf_version", "?"), k["load_cpu"], runs_text(k["runs"]),
                fnum(k["total_s"])))
    s.append("")
    s.append("**Lists.** Every name of every UT1 category with a `domains` file (%s files with "
             "adult-top1m, the \"white\" categories too) is blocked: %s lines, of which %s are "
             "bare IPv4 addresses (no DNS name, set aside) and %s are not DNS names (a label "
             "over 63 characters or a character names do not carry); %s distinct names. "
             "Unbound gets them as `local-zone: \"NAME.\" always_nxdomain` lines (%s), dnsmasq "
             "as `address=/NAME/` lines (%s; no address means NXDOMAIN), both for the name "
             "and every name below it. haven gets the database `haven lists compile --ut1 "
             "--list pornography=adult-top1m` makes of the same files (%s distinct entries, "
             "URLs and addresses included) and `bench/dns/policy.conf`, which blocks every "
             "category those lists import into, answered NXDOMAIN (`dns-block nxdomain`, the "
             "default)."
             % (k["list_files"], fnum(k["list_lines"]), fnum(k["list_ipv4_lines"]),
                fnum(k["list_other_rejected"]), fnum(k["blocked_names"]),
                mib(f("unbound_conf_bytes") / 1024), mib(f("dnsmasq_conf_bytes") / 1024),
                fnum(k.get("haven_entries", 0))))
    s.append("")
    s.append("**Queries.** %s lines of `NAME A`, fixed seed, in random order: %s (%.0f%%) "
             "distinct blocked names drawn from all the lists, the rest drawn uniformly from "
             "the %s allowed names: the Majestic top-15,000 sites less the %s that are listed "
             "or below a listed name. Before the timed runs each filter gets every allowed "
             "name once (%s qps), so that the allowed queries are answered from its cache, and "
             "then a check pass: every allowed name must come back NOERROR and every sampled "
             "blocked name NXDOMAIN."
             % (fnum(k["mix_queries"]), fnum(k["mix_blocked"]),
                100.0 * f("mix_blocked") / f("mix_queries"), fnum(k["allowed_names"]),
                fnum(k["top_sites_blocked"]), fnum(k["warm_qps"])))
    s.append("")
    s.append("**Upstream.** All three forward to the same stub: dnsmasq %s with `--no-resolv "
             "--no-hosts --address=/#/%s --local-ttl=%d --cache-size=0`, which answers every A "
             "query itself (TTL one day, so the filters keep the answers), on CPU %s. Unbound "
             "1.17 (`unbound -d`, `module-config: \"iterator\"`, `forward-zone` \".\" to the "
             "stub, default cache sizes); dnsmasq (`--server=` the stub, `--cache-size=%s`, "
             "`--no-resolv --no-hosts`); haven (`haven serve`, `workers 1`, `dns-upstream` the "
             "stub, `dns-rate-limit 0`, `access-log \"\"`, the default `dns-cache-memory`; "
             "its records database on, as in a school)."
             % (k.get("dnsmasq_version", "?"), STUB_ADDR, STUB_TTL, k["load_cpu"],
                fnum(k["dnsmasq_cache"])))
    s.append("")
    s.append("**Method.** Load time: from starting the server to its first NXDOMAIN answer for "
             "`%s` (a query every 10 ms; one sent while the server loads waits in its socket). "
             "RSS: `VmRSS` of `/proc/PID/status` after the warm-up and check pass. **Max qps**: "
             "`dnsperf -l %s -c %s -q %s` without a rate limit, a closed loop that keeps %s "
             "queries outstanding, so the server never waits for work and a query it drops "
             "shows as loss; the median of %s, and the loss of the worst run, which must "
             "be under 0.1%%. **Sustained**: open loop (`dnsperf -Q`, `-t 1`) at %s of that "
             "median, stepping down until a run loses under 0.1%%; the first such rate is "
             "shown (every step is in the results file). **Latency**: `dnsperf -Q %s -v`, a "
             "rate every server sustains (%.0f%% of the slowest filter's max qps, unless "
             "`DNS_LAT_QPS` says), %s of %s s; p50/p99/p99.9 of the per-query latencies "
             "dnsperf prints (dnsperf 2.10 has no latency histogram), the median over runs; "
             "lost queries are not in the percentiles but in the loss row. **dnsperf's "
             "ceiling**: the same runs against %s on the servers' CPU: a filter near it is "
             "limited by the load generator, not by itself. The CPU row is from "
             "`getrusage` and `/proc/stat` during the max-qps runs: the server's own CPU time, "
             "dnsperf's, and how busy each of the two CPUs was (loopback UDP is partly "
             "processed in the sender's kernel context, so a server can be the limit below "
             "100%% of its own time)."
             % (PROBE_BLOCKED, k["seconds"], k["clients"], k["outstanding"], k["outstanding"],
                runs_text(k["runs"]), ", ".join("%.0f%%" % (100 * float(x))
                                     for x in k["sustain_fractions"].split(",")),
                fnum(k["lat_qps"]), 100 * f("lat_fraction"), runs_text(k["runs"]),
                k["lat_seconds"],
                CEILINGS[k.get("ceiling_kind", "dnsmasq")]))
    s.append("")
    s.append("**Noise.** This machine is shared: other engineers' builds, tests and fuzzers "
             "may run on the same two CPUs (load average %s when the benchmark started), and "
             "it is a virtual machine (steal during the max-qps runs: CPU %s median %s%%, CPU "
             "%s %s%%). Open-loop loss and tail latency suffer most: a server that is not "
             "scheduled for a few milliseconds overflows its socket buffer (the system's "
             "default for all three).%s"
             % (k.get("loadavg", "?"), k["cpu"],
                max([k.get(x + "_max_busy_steal_pct", "0") for x in ("ceiling",) + FILTERS],
                    key=float),
                k["load_cpu"],
                max([k.get(x + "_max_lbusy_steal_pct", "0") for x in ("ceiling",) + FILTERS],
                    key=float), shared_note(k, ["ceiling"] + cols)))
    s.append("")
    hdr = [CEILING_NAMES[k.get("ceiling_kind", "dnsmasq")]] + [NAMES[c] for c in cols]
    srv = ["ceiling"] + cols
    s.append("| | " + " | ".join(hdr) + " |")
    s.append("|---|" + "--:|" * len(hdr))

    def row(label, fn, servers=srv):
        cells = []
        for x in srv:
            try:
                cells.append(fn(x) if x in servers else "")
            except (KeyError, ValueError):
                cells.append("?")
        s.append("| %s | %s |" % (label, " | ".join(cells)))

    row("load time (first NXDOMAIN)", lambda x: "%s s" % fnum(k[x + "_load_s"], 3), cols)
    row("RSS after load", lambda x: mib(k[x + "_rss_loaded_kb"]), cols)
    row("**RSS after warm-up**", lambda x: "**%s**" % mib(k[x + "_rss_warm_kb"]), cols)
    row("threads", lambda x: k[x + "_threads"], cols)
    row("RSS at the end (peak)", lambda x: "%s (%s)" % (mib(k[x + "_rss_end_kb"]),
                                                        mib(k[x + "_hwm_end_kb"])), cols)
    row("**max qps, one core**", lambda x: "**%s**" % fnum(k[x + "_max_qps"]))
    row("max qps, each run", lambda x: ", ".join(fnum(v) for v in k[x + "_max_qps_all"].split(",")))
    row("loss, worst run", lambda x: "%s%%" % fnum(k[x + "_max_loss_pct"], 3))
    row("at max, CPU use: server / dnsperf / CPU %s busy / CPU %s busy"
        % (k["cpu"], k["load_cpu"]),
        lambda x: "%s%% / %s%% / %s%% / %s%%" % (k[x + "_max_cpu_pct"], k[x + "_max_gen_pct"],
                                                 k[x + "_max_busy_pct"],
                                                 k[x + "_max_lbusy_pct"]))
    row("answers at max: NOERROR / NXDOMAIN", lambda x: " / ".join(
        "%s%%" % v.split(":")[1] for v in k[x + "_max_codes"].split(",")))
    row("**sustained** (open loop, loss < 0.1%)", lambda x: (
        "**%s** (%s%% loss)" % (fnum(k[x + "_sustain_qps"]), fnum(k[x + "_sustain_loss_pct"], 3))
        if x + "_sustain_qps" in k else "none of %s" % ", ".join(
            fnum(st.split(":")[0]) for st in k[x + "_sustain_steps"].split(","))))
    row("latency at %s qps: p50" % fnum(k["lat_qps"]), lambda x: lat(k[x + "_lat_p50_us"]))
    row("**p99**", lambda x: "**%s**" % lat(k[x + "_lat_p99_us"]))
    row("p99.9", lambda x: lat(k[x + "_lat_p999_us"]))
    row("p99 of each run", lambda x: ", ".join(lat(v) for v in k[x + "_lat_p99_us_all"].split(",")))
    row("loss at that rate, worst run", lambda x: "%s%%" % fnum(k[x + "_lat_loss_pct"], 3))
    row("check: allowed not NOERROR / blocked not NXDOMAIN / unanswered",
        lambda x: "%s / %s / %s" % (k[x + "_check_allowed_not_noerror"],
                                    k[x + "_check_blocked_not_nxdomain"],
                                    k[x + "_check_unanswered"]), cols)
    s.append("")
    samples = [(c, k.get(c + "_check_sample", "")) for c in cols if k.get(c + "_check_sample")]
    if samples:
        s.append("Check mismatches (name, answer): " + "; ".join(
            "%s: %s" % (NAMES[c], v) for c, v in samples) + ".")
        s.append("")
    if "haven" in have and "unbound" in have:
        ceiling = f("ceiling_max_qps")
        hq, uq = f("haven_max_qps"), f("unbound_max_qps")
        rq = hq / max(1.0, uq)
        rm = f("haven_rss_warm_kb") / max(1.0, f("unbound_rss_warm_kb"))
        rl = f("haven_load_s") / max(0.001, f("unbound_load_s"))
        at_ceiling = hq >= 0.9 * ceiling
        s.append("| goal | haven | Unbound | haven ÷ Unbound | target | |")
        s.append("|---|--:|--:|--:|--:|---|")
        s.append("| max qps | %s | %s | %.2f× | ≥ 1.5× (or dnsperf's ceiling, %s) | %s |"
                 % (fnum(hq), fnum(uq), rq, fnum(ceiling),
                    ok(rq >= 1.5 or at_ceiling) + (" (at the ceiling)" if at_ceiling and
                                                   rq < 1.5 else "")))
        s.append("| RSS after warm-up | %s | %s | %.2f× | ≤ 0.2× | %s |"
                 % (mib(k["haven_rss_warm_kb"]), mib(k["unbound_rss_warm_kb"]), rm, ok(rm <= 0.2)))
        s.append("| load time | %s s | %s s | %.2f× | < 1 s | %s |"
                 % (fnum(k["haven_load_s"], 3), fnum(k["unbound_load_s"], 3), rl,
                    ok(f("haven_load_s") < 1.0)))
        s.append("")
    notes = []
    for c in cols:
        rss = f(c + "_rss_warm_kb") * 1024
        notes.append("%s %s bytes" % (NAMES[c], fnum(rss / f("blocked_names"))))
    if notes:
        s.append("**Notes.** RSS after warm-up per blocked name (everything included: "
                 "code, cache, buffers): %s. Unbound keeps each `local-zone` as a node of its "
                 "own tree (the name, a lock, its settings); dnsmasq each `address=` as a "
                 "`struct server` entry in a sorted array searched by binary search (since "
                 "2.86); haven maps the compiled database file (%s) and matches every "
                 "label-boundary suffix of the name in it. dnsmasq's cache holds %s names "
                 "here (`--cache-size`), so every allowed name is answered from it; with its "
                 "default of 150 most allowed queries would go to the upstream, and dnsmasq "
                 "would be measured forwarding, not filtering. The stub's answers have a TTL "
                 "of one day, so nothing expires during the run, and the timed runs should "
                 "not reach the upstream: queries sent upstream in the whole benchmark, for "
                 "%s allowed names: Unbound %s (recursions, from its log), haven %s "
                 "(`haven_dns_queries_total{answer=\"forwarded\"}`; answered from its cache: "
                 "%s, blocked: %s)."
                 % ("; ".join(notes), mib(f("haven_db_bytes") / 1024) if "haven_db_bytes" in k
                    else "?", fnum(k["dnsmasq_cache"]), fnum(k["allowed_names"]),
                    fnum(k["unbound_recursions"]) if "unbound_recursions" in k else "?",
                    fnum(k["haven_dns_forwarded"]) if "haven_dns_forwarded" in k else "?",
                    fnum(k["haven_dns_cached"]) if "haven_dns_cached" in k else "?",
                    fnum(k["haven_dns_blocked"]) if "haven_dns_blocked" in k else "?"))
        if "haven_var_bytes" in k:
            s[-1] += (" haven keeps its records as in a school: blocked queries as rows of "
                      "its records database (one a minute per client and name), allowed ones "
                      "counted into hourly roll-ups; its data directory held %s at the end; "
                      "the records writer is one of its threads and shares the one core."
                      % mib(f("haven_var_bytes") / 1024))
        s.append("")
    if "haven" not in have:
        s.append("haven was not measured in this run (%s)." % k.get("haven_skipped",
                                                                    "not started"))
        s.append("")
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


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("lists")
    p.add_argument("data")
    p.add_argument("work")
    p.add_argument("--queries", type=int, default=200000)
    p.add_argument("--blocked-share", type=float, default=0.2)
    p.set_defaults(fn=cmd_lists)
    p = sub.add_parser("measure")
    p.add_argument("--work", required=True)
    p.add_argument("--haven", default="")
    p.add_argument("--policy", default="")
    p.add_argument("--db", default="")
    p.add_argument("--filters", default=",".join(FILTERS))
    p.add_argument("--echo", default="", help="bench_dnsecho, for dnsperf's ceiling")
    p.add_argument("--cpu", type=int, default=1)
    p.add_argument("--load-cpu", type=int, default=0)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--lat-seconds", type=int, default=10)
    p.add_argument("--clients", type=int, default=1)
    p.add_argument("--outstanding", type=int, default=100)
    p.add_argument("--sustain-fractions", default="0.9,0.75,0.5")
    p.add_argument("--lat-fraction", type=float, default=0.5)
    p.add_argument("--lat-qps", type=int, default=0)
    p.add_argument("--warm-qps", type=int, default=5000)
    p.add_argument("--dnsmasq-cache", type=int, default=50000)
    p.set_defaults(fn=cmd_measure)
    p = sub.add_parser("report")
    p.add_argument("results")
    p.add_argument("doc")
    p.set_defaults(fn=cmd_report)
    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
