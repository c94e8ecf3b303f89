"""`haven serve` as a DNS filter: queries asked as a school's devices ask them.

Each class starts one `haven serve` with `dns-listen` on a free port of 127.0.0.1 (and ::1 when
the machine has it), the stub DNS (tests/system/stubdns.py) as its upstream, and POLICY below:
pupils (the default group, `dns-block nxdomain`, YouTube strict), lab (127.0.0.2, `dns-block
page`, YouTube moderate, an `allow site` for a locked-tier name) and staff (127.0.0.3, safe
search off, `encrypted-dns allow`). Clients are told apart by their source address: every
127.0.0.0/8 address is this machine on Linux, so a query from 127.0.0.2 is "the lab".

The behaviour asserted is the DNS filter's spec (issue 6): answers, rcodes, what reaches the
upstream (the stub's --log), the records and the metrics a network manager reads. Waits are
hang guards, never timings; the cache's expiry is driven by haven's test clock
(HAVEN_TEST_CLOCK_FILE), not by sleeping.

dnspython (python3-dnspython) and dig (bind9-dnsutils) are needed: without them the tests skip
with a notice (scripts/install-deps installs both).
"""

import ipaddress
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import unittest

from helpers import (HavenTestCase, assert_no_sanitizer_report, describe, haven_bin, notice,
                     run_haven, write)
from proxyenv import WAIT, Haven, StubDNS, compile_lists

try:
    import dns.exception
    import dns.flags
    import dns.message
    import dns.query
    import dns.rcode
    import dns.rdatatype
except ImportError:  # the tests skip with a notice
    dns = None

DIG = shutil.which("dig")
QUERY_WAIT = 5  # a hang guard per query: an answer that has not come in this long is missing

LAB = "127.0.0.2"     # network 127.0.0.2/32 lab
STAFF = "127.0.0.3"   # network 127.0.0.3/32 staff
PUPIL = "127.0.0.1"   # no range: the default group, pupils
BLOCK_V4 = "127.0.0.80"
BLOCK_V6 = "::1"

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
    dns-block nxdomain
}

group lab {
    description "The computer lab"
    allow site abuse.test "Trying to allow a locked-tier name"
    block gambling social-networks
    default allow
    safe-search on
    youtube moderate
    unsafe-search block
    dns-block page
}

group staff {
    description "Staff"
    default allow
    safe-search off
    youtube off
    unsafe-search allow
    encrypted-dns allow
    dns-block page
}

default-group pupils
"""

LISTS = {
    "gambling": ["casino.test", "poker.test"],
    "games": ["games.test"],
    "social-networks": ["social.test"],
    "iwf": ["abuse.test"],
}

# The upstream's zone. Safe-search targets answer 127.0.1.x, the engines' own names 127.0.2.x,
# so an answer shows which was asked.
MANY = 40  # A records of many.test: over 512 bytes, under 1232, compressed or not
ZONE = [
    "*.test 300 A 127.0.0.1",
    "*.test 300 AAAA ::1",
    "forcesafesearch.google.com 300 A 127.0.1.1",
    "forcesafesearch.google.com 300 AAAA ::ffff:127.0.1.1",
    "restrict.youtube.com 300 A 127.0.1.2",
    "restrictmoderate.youtube.com 300 A 127.0.1.3",
    "strict.bing.com 300 A 127.0.1.4",
    "safe.duckduckgo.com 300 A 127.0.1.5",
    "www.google.com 300 A 127.0.2.1",
    "www.google.com 300 AAAA ::ffff:127.0.2.1",
    "www.google.co.uk 300 A 127.0.2.2",
    "www.youtube.com 300 A 127.0.2.3",
    "www.bing.com 300 A 127.0.2.4",
    "duckduckgo.com 300 A 127.0.2.5",
    "startpage.com 300 A 127.0.2.6",
    "www.startpage.com 300 A 127.0.2.6",
    "dns.google 300 A 127.0.2.7",
    "cloudflare-dns.com 300 A 127.0.2.7",
    "use-application-dns.net 300 A 127.0.2.8",
    "mask.icloud.com 300 A 127.0.2.9",
    "mask-h2.icloud.com 300 A 127.0.2.9",
    "ttl60.test 60 A 127.0.4.1",
    "long.test 3600 A 127.0.4.2",
    "popular.test 100 A 127.0.4.3",
] + ["many.test 300 A 127.0.3.%d" % i for i in range(1, MANY + 1)]

DB = None
STUB = None
_MODULE_TMP = None
_skip_reason = None


def setUpModule():
    global DB, STUB, _MODULE_TMP, _skip_reason
    if dns is None:
        _skip_reason = ("dnspython (python3-dnspython) is not installed: skipping "
                        "tests/system/test_dns.py")
        notice(_skip_reason)
        return
    if haven_bin() is None:
        return  # each test fails with "no haven binary"
    _MODULE_TMP = tempfile.mkdtemp(prefix="haven-dnstest-")
    DB = compile_lists(_MODULE_TMP, LISTS)
    STUB = StubDNS(ZONE, _MODULE_TMP)


def tearDownModule():
    if STUB:
        STUB.stop()
    if _MODULE_TMP:
        shutil.rmtree(_MODULE_TMP, True)


# ---------------------------------------------------------------------------- sockets, queries

def have_ipv6():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def free_dns_port(v6=False):
    """A port free for UDP and TCP on 127.0.0.1 (and ::1 if v6) a moment ago."""
    for _attempt in range(50):
        socks = []
        try:
            first = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            socks.append(first)
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            others = [(socket.AF_INET, socket.SOCK_STREAM, "127.0.0.1")]
            if v6:
                others += [(socket.AF_INET6, socket.SOCK_DGRAM, "::1"),
                           (socket.AF_INET6, socket.SOCK_STREAM, "::1")]
            for family, kind, host in others:
                s = socket.socket(family, kind)
                socks.append(s)
                s.bind((host, port))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError("no port free for both UDP and TCP")


def make_query(name, rdtype="A", edns=None):
    """A query with RD; edns: None = no OPT record, else the UDP size to advertise."""
    if edns is None:
        return dns.message.make_query(name, rdtype, use_edns=False)
    return dns.message.make_query(name, rdtype, use_edns=0, payload=edns)


def ask(port, name, rdtype="A", source=PUPIL, tcp=False, edns=None, server="127.0.0.1",
        tries=1, wait=QUERY_WAIT):
    """haven's answer (a dns.message.Message) to one query; fails if none comes."""
    q = make_query(name, rdtype, edns)
    for attempt in range(tries):
        try:
            if tcp:
                return dns.query.tcp(q, server, timeout=wait, port=port, source=source)
            return dns.query.udp(q, server, timeout=wait, port=port, source=source)
        except (dns.exception.Timeout, OSError, EOFError) as e:
            last = e
    raise AssertionError("no answer to %s %s from %s over %s (%d tries): %r"
                         % (name, rdtype, source, "TCP" if tcp else "UDP", tries, last))


def rcode(r):
    return dns.rcode.to_text(r.rcode())


def addresses(r, rdtype="A"):
    """The addresses of the answer's A (or AAAA) records, as ipaddress objects, in order."""
    want = dns.rdatatype.from_text(rdtype)
    return [ipaddress.ip_address(rd.address) for rrset in r.answer if rrset.rdtype == want
            for rd in rrset]


def ips(*texts):
    return [ipaddress.ip_address(t) for t in texts]


def cnames(r):
    """[(owner, target)] of the answer's CNAME records, without the final dots, lower case."""
    return [(rrset.name.to_text(True).lower(), rd.target.to_text(True).lower())
            for rrset in r.answer if rrset.rdtype == dns.rdatatype.CNAME for rd in rrset]


def ttls(r, rdtype="A"):
    want = dns.rdatatype.from_text(rdtype)
    return [rrset.ttl for rrset in r.answer if rrset.rdtype == want]


def show(r):
    return "\n" + r.to_text()


def header(qid, flags=0x0100, qd=1, an=0, ns=0, ar=0):
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


def wire_name(name):
    out = b""
    for label in name.split("."):
        out += bytes([len(label)]) + label.encode("ascii")
    return out + b"\0"


def question(name, qtype=1):
    return wire_name(name) + struct.pack("!HH", qtype, 1)


def raw_exchange(port, packets, good, source=PUPIL):
    """Send packets (bytes each) then the query good from one UDP socket; collect every reply
    until good's reply (by its ID) has come, then briefly drain. Returns [reply bytes]."""
    good_id = struct.unpack("!H", good[:2])[0]
    replies = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((source, 0))
        for p in packets:
            s.sendto(p, ("127.0.0.1", port))
        s.sendto(good, ("127.0.0.1", port))
        s.settimeout(QUERY_WAIT)
        got_good = False
        while True:
            try:
                data, _ = s.recvfrom(65535)
            except socket.timeout:
                break
            replies.append(data)
            if len(data) >= 2 and struct.unpack("!H", data[:2])[0] == good_id and not got_good:
                got_good = True
                s.settimeout(0.3)  # late replies to the earlier packets, if any
    if not got_good:
        raise AssertionError("no answer to the good query after %d bad packets" % len(packets))
    return replies


def reply_header(data):
    """(id, flags, rcode from the header) of a reply."""
    if len(data) < 12:
        raise AssertionError("a reply shorter than a header: %r" % data)
    qid, flags = struct.unpack("!HH", data[:4])
    return qid, flags, flags & 0xF


def stub_count(stub, name, rdtype="A"):
    """How many times the upstream stub was asked name/rdtype (any protocol)."""
    return sum(1 for q in stub.queries() if q.split(" ")[:2] == [name, rdtype])


def metric(h, name, **labels):
    """The sum of the metric's values whose labels include labels (0 if none)."""
    total = 0.0
    for key, value in h.metrics().items():
        base = key.split("{", 1)[0]
        if base != name:
            continue
        if all('%s="%s"' % kv in key for kv in labels.items()):
            total += value
    return total


def dig(port, name, rdtype="A", source=PUPIL, opts=()):
    argv = [DIG, "@127.0.0.1", "-p", str(port), "-b", source, "+tries=1", "+time=%d" % QUERY_WAIT]
    argv += list(opts) + [name, rdtype]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=WAIT)
    return p


# ---------------------------------------------------------------------------- the daemon

class DnsCase(HavenTestCase):
    """One `haven serve` with the DNS filter for the whole class (self.h, self.port)."""

    EXTRA = ""           # more configuration lines
    USERS = ()           # (user, group) added to the users database before the start
    SESSIONS = ()        # (user, ip) sessions opened before the start
    RESOLVER = True      # cls.stub as `resolver` (the DNS filter's default upstream)
    CLOCK = False        # run haven on the test clock (cls.clock_file)
    V6 = False           # listen on [::1] too, when the machine has it
    WORKERS = 1          # one worker: each worker has its own share of the cache, so "the
                         # second query comes from the cache" holds only with one

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if _skip_reason:
            raise unittest.SkipTest(_skip_reason)
        if haven_bin() is None:
            return
        cls.dir = cls.class_tmp()
        cls.v6 = cls.V6 and have_ipv6()
        cls.port = free_dns_port(cls.v6)
        listen = "127.0.0.1:%d" % cls.port + (" [::1]:%d" % cls.port if cls.v6 else "")
        env = {}
        if cls.CLOCK:
            cls.now = int(time.time())
            cls.clock_file = write(cls.dir / "clock", "%d\n" % cls.now)
            env["HAVEN_TEST_CLOCK_FILE"] = str(cls.clock_file)
        cls.stub = STUB  # the upstream whose --log the tests read (prepare_extra may change it)
        extra = cls.prepare_extra()
        cls.h = Haven(cls.dir, DB, POLICY, cls.stub.port if cls.RESOLVER else None,
                      "dns-listen %s\n%s" % (listen, extra), cls.WORKERS,
                      env=env)
        cls.users = cls.h.data / "users.sqlite"
        for user, group in cls.USERS:
            cls.cli("users", "add", user, "--group", group)
        for user, ip in cls.SESSIONS:
            cls.cli("session", "add", user, ip)
        cls.addClassCleanup(cls.h.kill)
        cls.h.start()
        cls.addClassCleanup(cls.h.stop)  # runs first: SIGTERM, exit 0, no sanitizer report
        cls.wait_ready()

    @classmethod
    def prepare_extra(cls):
        return cls.EXTRA

    @classmethod
    def cli(cls, *args):
        p = run_haven(list(args) + ["--db", cls.users])
        if p.returncode != 0:
            raise AssertionError("haven %s: %s" % (" ".join(args), describe(p)))
        return p

    @classmethod
    def wait_ready(cls):
        """Wait (a hang guard) until the DNS filter answers a query."""
        deadline = time.monotonic() + WAIT
        while True:
            try:
                ask(cls.port, "use-application-dns.net", wait=0.5)
                return
            except AssertionError:
                pass
            if cls.h.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("haven's DNS filter never answered on 127.0.0.1:%d:\n%s"
                                     % (cls.port, cls.h.stderr()[-4000:]))

    def setUp(self):
        super().setUp()
        self.assertIsNone(self.h.proc.poll(), "haven serve has exited:\n" + self.h.stderr())

    def ask(self, name, rdtype="A", **kw):
        return ask(self.port, name, rdtype, **kw)

    def assertRcode(self, r, want, what=""):
        self.assertEqual(rcode(r), want, "%s%s" % (what, show(r)))

    def assertAnswer(self, r, rdtype, want, chain=(), what=""):
        """NOERROR, these CNAMEs (owner, target) and these addresses, in any order."""
        msg = "%s%s" % (what, show(r))
        self.assertEqual(rcode(r), "NOERROR", msg)
        self.assertEqual(cnames(r), list(chain), msg)
        self.assertEqual(sorted(addresses(r, rdtype)), sorted(ips(*want)), msg)

    def log(self, url, client, what=None):
        """The access-log record of the DNS query url (dns://NAME/TYPE) from client."""
        return self.h.wait_log(lambda x: x.get("method") == "DNS" and x.get("url") == url
                               and x.get("client") == client,
                               what or "DNS record %s from %s" % (url, client))


# ============================================================================ the main daemon

class TestFilter(DnsCase):
    """Forwarding, caching, blocking, safe search, canaries, truncation, bad packets, records."""

    EXTRA = ("network 127.0.0.2/32 lab\nnetwork 127.0.0.3/32 staff\n"
             "dns-block-address %s %s\n" % (BLOCK_V4, BLOCK_V6))
    USERS = (("bob", "staff"), ("amy", "pupils"))
    SESSIONS = (("amy", "127.0.0.5"),)
    V6 = True

    def test_allowed_names_forwarded_then_cached(self):
        before = metric(self.h, "haven_dns_queries_total", answer="cached")
        r = self.ask("site.test", "A")
        self.assertAnswer(r, "A", ["127.0.0.1"])
        self.assertTrue(r.flags & dns.flags.QR, show(r))
        self.assertTrue(r.flags & dns.flags.RA, "recursion available" + show(r))
        self.assertEqual(stub_count(self.stub, "site.test", "A"), 1, self.stub.queries())
        # The same name over TCP, and in another case: from the cache, not asked again.
        r = self.ask("Site.TEST", "A", tcp=True)
        self.assertAnswer(r, "A", ["127.0.0.1"])
        self.assertEqual(stub_count(self.stub, "site.test", "A"), 1,
                         "the second query was not served from the cache: %s" % self.stub.queries())
        # AAAA, first over TCP then UDP.
        r = self.ask("site.test", "AAAA", tcp=True)
        self.assertAnswer(r, "AAAA", ["::1"])
        r = self.ask("site.test", "AAAA")
        self.assertAnswer(r, "AAAA", ["::1"])
        self.assertEqual(stub_count(self.stub, "site.test", "AAAA"), 1, self.stub.queries())
        self.assertGreaterEqual(metric(self.h, "haven_dns_queries_total", answer="cached"),
                                before + 2)
        self.assertGreaterEqual(metric(self.h, "haven_dns_queries_total", answer="forwarded"), 2)
        # The upstream's NXDOMAIN and NODATA reach the client.
        self.assertRcode(self.ask("nosuch.example"), "NXDOMAIN")
        r = self.ask("www.youtube.com", "AAAA", source=STAFF)
        self.assertRcode(r, "NOERROR")
        self.assertEqual(r.answer, [], show(r))

    def test_ipv6_listener(self):
        if not self.v6:
            notice("::1 is not available: skipping the DNS filter's IPv6 listener test")
            self.skipTest("no ::1")
        r = self.ask("v6.test", "A", server="::1", source="::1")
        self.assertAnswer(r, "A", ["127.0.0.1"])
        r = self.ask("v6.test", "AAAA", server="::1", source="::1", tcp=True)
        self.assertAnswer(r, "AAAA", ["::1"])
        self.assertRcode(self.ask("casino.test", server="::1", source="::1"), "NXDOMAIN")

    def test_blocked_names(self):
        # pupils: dns-block nxdomain, for every type, whatever the case of the name.
        for name in ("casino.test", "www.casino.test", "CaSiNo.TeSt"):
            for rdtype in ("A", "AAAA", "TXT"):
                for tcp in (False, True):
                    r = self.ask(name, rdtype, tcp=tcp)
                    self.assertRcode(r, "NXDOMAIN", "pupils %s %s: " % (name, rdtype))
        # lab: dns-block page: A -> the IPv4 block address, AAAA -> the IPv6 one, TTL 60.
        r = self.ask("casino.test", "A", source=LAB)
        self.assertAnswer(r, "A", [BLOCK_V4], what="lab casino.test A: ")
        self.assertEqual(ttls(r, "A"), [60], show(r))
        r = self.ask("casino.test", "AAAA", source=LAB, tcp=True)
        self.assertAnswer(r, "AAAA", [BLOCK_V6], what="lab casino.test AAAA: ")
        self.assertEqual(ttls(r, "AAAA"), [60], show(r))
        for rdtype in ("TXT", "HTTPS"):
            r = self.ask("casino.test", rdtype, source=LAB)
            self.assertRcode(r, "NOERROR")
            self.assertEqual(r.answer, [], "other types: no records" + show(r))
        self.assertRcode(self.ask("casino.test", "HTTPS"), "NXDOMAIN")
        # The lab's own block (social-networks) is only the lab's.
        self.assertAnswer(self.ask("social.test", source=LAB), "A", [BLOCK_V4])
        self.assertAnswer(self.ask("social.test"), "A", ["127.0.0.1"])
        # Blocked names are never asked upstream.
        self.assertFalse(self.stub.asked("casino.test"), self.stub.queries())
        self.assertFalse(self.stub.asked("www.casino.test"), self.stub.queries())
        self.assertGreaterEqual(metric(self.h, "haven_dns_queries_total", answer="blocked"), 1)

    def test_block_page_for_browsers_sent_to_haven(self):
        # A lab browser that got the block address asks haven itself for the page (port 80 in
        # a school; the proxy listener here): the block page says why. Nothing else is fetched.
        def get(host, path="/games/top"):
            with socket.create_connection(("127.0.0.1", self.h.port), timeout=WAIT,
                                          source_address=(LAB, 0)) as so:
                so.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                            % (path, host)).encode())
                data = b""
                while True:
                    chunk = so.recv(65536)
                    if not chunk:
                        return data.decode("utf-8", "replace")
                    data += chunk

        page = get("casino.test")
        self.assertTrue(page.startswith("HTTP/1.1 403"), page[:300])
        self.assertIn("casino.test", page)
        self.assertIn("Gambling", page)
        page = get("records.test")  # an allowed site: haven is not a transparent proxy
        self.assertTrue(page.startswith("HTTP/1.1 404"), page[:300])
        self.assertFalse(self.stub.asked("casino.test"), self.stub.queries())

    def test_locked_tier_blocked_despite_allow(self):
        # The lab's policy names abuse.test in `allow site`; the locked tier wins.
        r = self.ask("abuse.test", source=LAB)
        self.assertAnswer(r, "A", [BLOCK_V4], what="lab abuse.test: ")
        self.assertAnswer(self.ask("img.abuse.test", source=LAB), "A", [BLOCK_V4])
        self.assertRcode(self.ask("abuse.test"), "NXDOMAIN", "pupils: ")
        self.assertAnswer(self.ask("abuse.test", source=STAFF), "A", [BLOCK_V4])
        rec = self.log("dns://abuse.test/A", LAB)
        self.assertEqual((rec["action"], rec["group"], rec["tier"]), ("block", "lab", "locked"),
                         rec)
        self.assertIn("iwf", rec["categories"], rec)
        self.assertFalse(self.stub.asked("abuse.test"), self.stub.queries())

    def test_ip_session_decides_group(self):
        src = "127.0.0.4"  # in no range: a pupil until bob signs in there
        self.assertRcode(self.ask("poker.test", source=src), "NXDOMAIN")
        n = self.h.err_count()
        self.cli("session", "add", "bob", src)
        self.h.wait_stderr("users and sessions reloaded", start=n)
        deadline = time.monotonic() + WAIT
        while True:  # a hang guard: the session applies once haven has read it
            r = self.ask("poker.test", source=src)
            if rcode(r) == "NOERROR":
                break
            self.assertLess(time.monotonic(), deadline, "bob's session never applied" + show(r))
            time.sleep(0.2)
        self.assertAnswer(r, "A", ["127.0.0.1"], what="bob (staff) poker.test: ")
        rec = self.h.wait_log(lambda x: x.get("url") == "dns://poker.test/A"
                              and x.get("client") == src and x.get("action") == "allow",
                              "bob's allowed query")
        self.assertEqual((rec["user"], rec["group"]), ("bob", "staff"), rec)

    def test_safe_search_google(self):
        for name in ("www.google.com", "www.google.co.uk", "google.fr"):
            for tcp in (False, True):
                r = self.ask(name, "A", tcp=tcp)
                self.assertAnswer(r, "A", ["127.0.1.1"],
                                  [(name, "forcesafesearch.google.com")], "%s A: " % name)
            r = self.ask(name, "AAAA")
            self.assertAnswer(r, "AAAA", ["::ffff:127.0.1.1"],
                              [(name, "forcesafesearch.google.com")], "%s AAAA: " % name)
        # Other types (HTTPS, as browsers ask): the CNAME alone, nothing of the engine's own.
        for rdtype in ("TXT", "HTTPS"):
            r = self.ask("www.google.com", rdtype)
            self.assertRcode(r, "NOERROR")
            self.assertEqual(cnames(r), [("www.google.com", "forcesafesearch.google.com")],
                             show(r))
            self.assertEqual(len(r.answer), 1, show(r))
        # The lab too (safe search on); staff get the engine's own answer.
        self.assertAnswer(self.ask("www.google.com", source=LAB), "A", ["127.0.1.1"],
                          [("www.google.com", "forcesafesearch.google.com")])
        self.assertAnswer(self.ask("www.google.com", source=STAFF), "A", ["127.0.2.1"])
        self.assertAnswer(self.ask("www.google.com", "AAAA", source=STAFF), "AAAA",
                          ["::ffff:127.0.2.1"])
        self.assertAnswer(self.ask("www.google.co.uk", source=STAFF), "A", ["127.0.2.2"])
        # The target is resolved through the upstream once, then cached.
        self.assertEqual(stub_count(self.stub, "forcesafesearch.google.com", "A"), 1, self.stub.queries())
        self.assertGreaterEqual(metric(self.h, "haven_dns_queries_total", answer="safe-search"),
                                7)

    def test_safe_search_youtube_bing_duckduckgo(self):
        for name in ("www.youtube.com", "m.youtube.com", "youtubei.googleapis.com"):
            self.assertAnswer(self.ask(name), "A", ["127.0.1.2"],
                              [(name, "restrict.youtube.com")], "pupils (strict) %s: " % name)
            self.assertAnswer(self.ask(name, source=LAB), "A", ["127.0.1.3"],
                              [(name, "restrictmoderate.youtube.com")],
                              "lab (moderate) %s: " % name)
        self.assertAnswer(self.ask("www.youtube.com", source=STAFF), "A", ["127.0.2.3"],
                          what="staff (youtube off): ")
        self.assertAnswer(self.ask("www.bing.com"), "A", ["127.0.1.4"],
                          [("www.bing.com", "strict.bing.com")])
        self.assertAnswer(self.ask("www.bing.com", source=STAFF), "A", ["127.0.2.4"])
        for name in ("duckduckgo.com", "www.duckduckgo.com", "start.duckduckgo.com"):
            self.assertAnswer(self.ask(name), "A", ["127.0.1.5"],
                              [(name, "safe.duckduckgo.com")])
        self.assertAnswer(self.ask("duckduckgo.com", source=STAFF), "A", ["127.0.2.5"])
        r = self.ask("yandex.ru")
        self.assertAnswer(r, "A", ["213.180.193.56"])
        r = self.ask("ya.ru", "AAAA")
        self.assertRcode(r, "NOERROR")
        self.assertEqual(addresses(r, "AAAA"), [], show(r))
        self.assertFalse(self.stub.asked("yandex.ru"), self.stub.queries())

    def test_unenforceable_engine_blocked(self):
        for name in ("startpage.com", "www.startpage.com"):
            self.assertRcode(self.ask(name), "NXDOMAIN", "pupils %s: " % name)
            self.assertAnswer(self.ask(name, source=LAB), "A", [BLOCK_V4], what="lab: ")
        # Staff (safe-search off, unsafe-search allow) reach it.
        self.assertAnswer(self.ask("startpage.com", source=STAFF), "A", ["127.0.2.6"])
        rec = self.log("dns://startpage.com/A", PUPIL)
        self.assertEqual((rec["action"], rec["tier"]), ("block", "circumvention"), rec)

    def test_canaries_for_every_group(self):
        before = metric(self.h, "haven_dns_queries_total", answer="canary")
        names = ("use-application-dns.net", "mask.icloud.com", "mask-h2.icloud.com")
        for source in (PUPIL, LAB, STAFF):
            for name in names:
                for rdtype in ("A", "AAAA"):
                    r = self.ask(name, rdtype, source=source)
                    self.assertRcode(r, "NXDOMAIN", "%s %s from %s: " % (name, rdtype, source))
        r = self.ask("MASK.icloud.com", tcp=True, source=STAFF)
        self.assertRcode(r, "NXDOMAIN")
        for name in names:
            self.assertFalse(self.stub.asked(name), self.stub.queries())
        self.assertGreaterEqual(metric(self.h, "haven_dns_queries_total", answer="canary"),
                                before + 19)

    def test_encrypted_dns_providers(self):
        # pupils and lab: `encrypted-dns block` (the default); staff: `encrypted-dns allow`.
        for name in ("dns.google", "cloudflare-dns.com"):
            self.assertRcode(self.ask(name), "NXDOMAIN", "pupils %s: " % name)
            self.assertAnswer(self.ask(name, source=LAB), "A", [BLOCK_V4], what="lab: ")
            self.assertAnswer(self.ask(name, source=STAFF), "A", ["127.0.2.7"],
                              what="staff %s: " % name)
        rec = self.log("dns://dns.google/A", PUPIL)
        self.assertEqual((rec["action"], rec["tier"]), ("block", "circumvention"), rec)

    def test_truncation_then_tcp(self):
        want = ["127.0.3.%d" % i for i in range(1, MANY + 1)]
        # No EDNS: the answer does not fit 512 bytes, so it comes truncated.
        q = make_query("many.test", "A")
        r = dns.query.udp(q, "127.0.0.1", timeout=QUERY_WAIT, port=self.port, source=PUPIL)
        self.assertRcode(r, "NOERROR")
        self.assertTrue(r.flags & dns.flags.TC, "TC not set on a >512-byte answer" + show(r))
        # The client retries over TCP and gets the whole answer.
        r = dns.query.tcp(q, "127.0.0.1", timeout=QUERY_WAIT, port=self.port, source=PUPIL)
        self.assertFalse(r.flags & dns.flags.TC, show(r))
        self.assertAnswer(r, "A", want)
        # With EDNS (1232 bytes) it fits in one UDP answer.
        r = self.ask("many.test", edns=1232)
        self.assertFalse(r.flags & dns.flags.TC, show(r))
        self.assertAnswer(r, "A", want)
        self.assertIsNotNone(r.opt, "an EDNS query gets an OPT record back" + show(r))
        # A client that can take 600 bytes is told to retry too (the answer is bigger).
        r = self.ask("many.test", edns=600)
        self.assertTrue(r.flags & dns.flags.TC, "TC not set for a 600-byte EDNS client" + show(r))

    def test_tcp_queries_in_turn_on_one_connection(self):
        # RFC 7766: several length-prefixed queries on one connection, each answered.
        names = ["pipe%d.test" % i for i in range(3)] + ["casino.test"]
        queries = [make_query(n) for n in names]
        wire = b"".join(struct.pack("!H", len(w)) + w for w in (q.to_wire() for q in queries))
        got = {}
        with socket.create_connection(("127.0.0.1", self.port), timeout=QUERY_WAIT) as s:
            s.sendall(wire)
            buf = b""
            while len(got) < len(queries):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
                while len(buf) >= 2 and len(buf) >= 2 + struct.unpack("!H", buf[:2])[0]:
                    n = struct.unpack("!H", buf[:2])[0]
                    r = dns.message.from_wire(buf[2:2 + n])
                    got[r.id] = r
                    buf = buf[2 + n:]
        self.assertEqual(sorted(got), sorted(q.id for q in queries),
                         "not every query on the connection was answered")
        for name, q in zip(names, queries):
            r = got[q.id]
            self.assertEqual(r.question[0].name.to_text(True), name, show(r))
            if name == "casino.test":
                self.assertRcode(r, "NXDOMAIN")
            else:
                self.assertAnswer(r, "A", ["127.0.0.1"])

    def test_dig(self):
        if DIG is None:
            notice("dig (bind9-dnsutils) not found: skipping the dig test of the DNS filter")
            self.skipTest("no dig")
        p = dig(self.port, "many.test", opts=["+noedns", "+noall", "+answer", "+comments"])
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertIn("Truncated, retrying in TCP mode", p.stdout, describe(p))
        got = [l.split()[-1] for l in p.stdout.splitlines()
               if l.startswith("many.test.") and l.split()[3:4] == ["A"]]
        self.assertEqual(sorted(got), sorted("127.0.3.%d" % i for i in range(1, MANY + 1)),
                         describe(p))
        p = dig(self.port, "casino.test", source=LAB, opts=["+short"])
        self.assertEqual((p.returncode, p.stdout.strip()), (0, BLOCK_V4), describe(p))
        p = dig(self.port, "casino.test", opts=["+tcp"])
        self.assertIn("status: NXDOMAIN", p.stdout, describe(p))

    def test_any_is_minimal(self):
        for tcp in (False, True):
            r = self.ask("anyq.test", "ANY", tcp=tcp)
            self.assertRcode(r, "NOERROR")
            self.assertEqual(len(r.answer), 1, show(r))
            rrset = r.answer[0]
            self.assertEqual(rrset.rdtype, dns.rdatatype.HINFO, show(r))
            self.assertEqual(len(rrset), 1, show(r))
            rd = rrset[0]
            self.assertEqual((rd.cpu, rd.os), (b"RFC8482", b""), show(r))
        self.assertFalse(self.stub.asked("anyq.test"), self.stub.queries())

    def test_malformed_packets(self):
        errors = metric(self.h, "haven_dns_queries_total", answer="error")
        good_q = header(0x6001) + question("good.test")
        opt = b"\0" + struct.pack("!HHIH", 41, 1232, 0, 0)
        opt_v1 = b"\0" + struct.pack("!HHIH", 41, 1232, 0x00010000, 0)
        cases = [
            # (what, packet, expected rcode or None for no answer)
            ("shorter than a header", b"\x60\x10\x01\x00\x00", None),
            ("a response", header(0x6011, 0x8180) + question("resp.test"), None),
            ("label type 0x40", header(0x6012) + b"\x41abc\0" + struct.pack("!HH", 1, 1),
             "FORMERR"),
            ("label type 0x80", header(0x6013) + b"\x81a\0" + struct.pack("!HH", 1, 1),
             "FORMERR"),
            ("pointer to itself", header(0x6014) + b"\xc0\x0c" + struct.pack("!HH", 1, 1),
             "FORMERR"),
            ("pointer loop", header(0x6015) + b"\x01a\xc0\x0c" + struct.pack("!HH", 1, 1),
             "FORMERR"),
            ("pointer forwards", header(0x6016) + b"\xc0\x10\0\0\x01x\0" +
             struct.pack("!HH", 1, 1), "FORMERR"),
            ("QDCOUNT 2", header(0x6017, qd=2) + question("a.test") + question("b.test"),
             "FORMERR"),
            ("QDCOUNT 0", header(0x6018, qd=0), "FORMERR"),
            ("name runs past the end", header(0x6019) + b"\x05abc", "FORMERR"),
            ("name over 255 bytes", header(0x601a) + (b"\x3f" + b"a" * 63) * 5 + b"\0" +
             struct.pack("!HH", 1, 1), "FORMERR"),
            ("trailing bytes", header(0x601b) + question("t.test") + b"junk", "FORMERR"),
            ("ARCOUNT 1 with nothing there", header(0x601c, ar=1) + question("t.test"),
             "FORMERR"),
            ("two OPT records", header(0x601d, ar=2) + question("t.test") + opt + opt,
             "FORMERR"),
            ("opcode 5 (UPDATE)", header(0x601e, 5 << 11) + question("u.test"), "NOTIMP"),
            ("opcode 4 (NOTIFY)", header(0x601f, 4 << 11) + question("u.test"), "NOTIMP"),
            ("EDNS version 1", header(0x6020, ar=1) + question("v.test") + opt_v1, "BADVERS"),
        ]
        for what, packet, want in cases:
            with self.subTest(what):
                replies = raw_exchange(self.port, [packet], good_q)
                qid = struct.unpack("!H", packet[:2])[0]
                mine = [d for d in replies if d[:2] == packet[:2]]
                good = [d for d in replies if d[:2] == good_q[:2]]
                self.assertEqual(len(good), 1, "the good query after %s" % what)
                g = dns.message.from_wire(good[0])
                self.assertAnswer(g, "A", ["127.0.0.1"], what="good query after %s: " % what)
                if want is None:
                    self.assertEqual(mine, [], "%s: expected no answer" % what)
                    continue
                self.assertEqual(len(mine), 1, "%s: expected one %s answer" % (what, want))
                rid, flags, code = reply_header(mine[0])
                self.assertEqual(rid, qid)
                self.assertTrue(flags & 0x8000, "%s: QR not set" % what)
                if want == "BADVERS":
                    r = dns.message.from_wire(mine[0])
                    self.assertEqual(rcode(r), "BADVERS", what + show(r))
                    self.assertIsNotNone(r.opt, what + show(r))
                    self.assertEqual(r.edns, 0, "BADVERS is sent with our version, 0" + show(r))
                else:
                    self.assertEqual(dns.rcode.to_text(code), want, "%s: %r" % (what, mine[0]))
        # Garbage over TCP: a short message, then a lying length; the next connection works.
        for junk in (struct.pack("!H", 5) + b"\x01\x02\x03\x04\x05",
                     struct.pack("!H", 40) + header(0x6030) + b"\x05ab"):
            with socket.create_connection(("127.0.0.1", self.port), timeout=QUERY_WAIT) as s:
                s.sendall(junk)
                s.shutdown(socket.SHUT_WR)
                try:
                    while s.recv(4096):
                        pass
                except (socket.timeout, ConnectionError):
                    pass
        self.assertAnswer(self.ask("good.test", tcp=True), "A", ["127.0.0.1"])
        self.assertIsNone(self.h.proc.poll(), "haven serve died:\n" + self.h.stderr()[-4000:])
        # FORMERR, NOTIMP and BADVERS are counted as errors (15 answered above).
        self.assertGreaterEqual(metric(self.h, "haven_dns_queries_total", answer="error"),
                                errors + 15)
        assert_no_sanitizer_report(self.h.stderr(), "haven serve")

    def test_records_of_queries(self):
        amy = "127.0.0.5"  # amy's IP session (a pupil)
        self.assertRcode(self.ask("casino.test", source=amy), "NXDOMAIN")
        self.assertAnswer(self.ask("games.test", source=amy), "A", ["127.0.0.1"],
                          what="warn is answered normally: ")
        for _ in range(3):
            self.assertAnswer(self.ask("records.test", "AAAA", source=amy), "AAAA", ["::1"])
        rec = self.log("dns://casino.test/A", amy)
        self.assertEqual((rec["action"], rec["user"], rec["group"]), ("block", "amy", "pupils"),
                         rec)
        self.assertEqual(rec["categories"], ["gambling"], rec)
        self.assertEqual(rec["tier"], "category", rec)
        self.assertIn("policy.conf:", rec["rule"], rec)
        rec = self.log("dns://games.test/A", amy)
        self.assertEqual((rec["action"], rec["categories"]), ("warn", ["games"]), rec)
        rec = self.log("dns://records.test/AAAA", amy)
        self.assertEqual((rec["action"], rec["user"]), ("allow", "amy"), rec)
        # The block is an event in amy's activity.
        deadline = time.monotonic() + WAIT
        while True:
            p = self.cli("activity", "amy", "--json")
            evs = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
            hit = [e for e in evs if e.get("type") == "event"
                   and "casino.test" in "%s %s" % (e.get("host"), e.get("url"))]
            if hit or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertTrue(hit, "the blocked query is not in `haven activity amy`:\n" + p.stdout)
        self.assertEqual(hit[0].get("kind"), "block", hit[0])
        p = self.cli("activity", "amy")
        self.assertIn("casino.test", p.stdout)
        # The allowed name is counted on the worker and reaches amy's hourly roll-ups: once,
        # with its three queries.
        deadline = time.monotonic() + WAIT
        while True:
            p = self.cli("activity", "amy", "--json")
            rows = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
            ups = [r for r in rows if r.get("type") == "rollup" and r.get("host") == "records.test"]
            if ups or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.assertEqual([r.get("requests") for r in ups], [3],
                         "the allowed queries are not in amy's roll-ups:\n" + p.stdout)


# ============================================================================ limits

class TestLimits(DnsCase):
    """dns-allow, network ranges, the rate limit; and `dns-block page` without an IPv6 address."""

    EXTRA = ("network 127.0.0.2/32 lab\ndns-allow 127.0.0.1/32\ndns-rate-limit 5\n"
             "dns-block-address %s\n" % BLOCK_V4)
    WORKERS = 2

    def test_refused_outside_allowed_ranges(self):
        stranger = "127.0.0.9"
        before = metric(self.h, "haven_dns_queries_total", answer="refused")
        for name, tcp in (("refused.test", False), ("refused.test", True),
                          ("use-application-dns.net", False), ("casino.test", False)):
            r = self.ask(name, source=stranger, tcp=tcp)
            self.assertRcode(r, "REFUSED", "%s from %s: " % (name, stranger))
            self.assertEqual(r.answer, [], show(r))
        self.assertFalse(self.stub.asked("refused.test"), self.stub.queries())
        # The network range and dns-allow are answered.
        self.assertAnswer(self.ask("inrange.test", source=LAB), "A", ["127.0.0.1"])
        self.assertAnswer(self.ask("inrange.test", tries=5), "A", ["127.0.0.1"])
        self.assertGreaterEqual(metric(self.h, "haven_dns_queries_total", answer="refused"),
                                before + 4)

    def test_rate_limit_drops_a_burst(self):
        self.ask("burst.test", tries=5)  # in the cache
        before = metric(self.h, "haven_dns_queries_total", answer="dropped")
        answered = set()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((PUPIL, 0))
            for i in range(50):
                q = make_query("burst.test")
                q.id = 0x7000 + i
                s.sendto(q.to_wire(), ("127.0.0.1", self.port))
            s.settimeout(1.0)  # a quiet second ends the collection (not asserted)
            while True:
                try:
                    data, _ = s.recvfrom(65535)
                except socket.timeout:
                    break
                answered.add(struct.unpack("!H", data[:2])[0])
        notice("dns-rate-limit 5: %d of a 50-query burst answered" % len(answered))
        self.assertLess(len(answered), 50, "every query of a 50-query burst was answered with "
                        "dns-rate-limit 5")
        self.assertGreater(len(answered), 0, "no query of the burst was answered")
        # Another client is answered meanwhile.
        self.assertAnswer(self.ask("burst.test", source=LAB), "A", ["127.0.0.1"])
        self.assertGreater(metric(self.h, "haven_dns_queries_total", answer="dropped"), before)

    def test_block_page_without_ipv6_address(self):
        r = self.ask("casino.test", "A", source=LAB)
        self.assertAnswer(r, "A", [BLOCK_V4])
        r = self.ask("casino.test", "AAAA", source=LAB)
        self.assertRcode(r, "NOERROR")
        self.assertEqual(r.answer, [], "AAAA with no IPv6 block address: no records" + show(r))


# ============================================================================ cache expiry

class TestCacheExpiry(DnsCase):
    """The cache's TTLs, on haven's test clock (HAVEN_TEST_CLOCK_FILE); the upstream gives
    negative answers an SOA with a 30 s TTL."""

    CLOCK = True
    RESOLVER = False

    @classmethod
    def prepare_extra(cls):
        d = cls.dir / "upstream"
        d.mkdir()
        cls.stub = StubDNS(ZONE + ["broken.test SERVFAIL"], d, ["--negative-ttl", "30"])
        cls.addClassCleanup(cls.stub.stop)
        return "dns-upstream 127.0.0.1:%d\ndns-max-ttl 2m\n" % cls.stub.port

    def advance(self, seconds):
        """Move haven's clock forward (the file is replaced whole: haven never reads half)."""
        type(self).now += seconds
        tmp = write(self.clock_file.with_suffix(".new"), "%d\n" % self.now)
        os.replace(tmp, self.clock_file)

    def test_ttl_counts_down_and_expires(self):
        r = self.ask("ttl60.test")
        self.assertAnswer(r, "A", ["127.0.4.1"])
        self.assertEqual(ttls(r), [60], show(r))
        self.assertEqual(stub_count(self.stub, "ttl60.test"), 1, self.stub.queries())
        self.advance(10)
        r = self.ask("ttl60.test")
        self.assertAnswer(r, "A", ["127.0.4.1"])
        self.assertEqual(stub_count(self.stub, "ttl60.test"), 1,
                         "asked upstream again before the TTL ran out: %s" % self.stub.queries())
        self.assertTrue(0 < ttls(r)[0] <= 50, "the TTL did not count down by the 10 s that "
                        "passed" + show(r))
        self.advance(51)
        r = self.ask("ttl60.test")
        self.assertAnswer(r, "A", ["127.0.4.1"])
        self.assertEqual(stub_count(self.stub, "ttl60.test"), 2,
                         "not asked upstream again after the TTL ran out: %s" % self.stub.queries())
        self.assertEqual(ttls(r), [60], show(r))

    def test_max_ttl_bounds_the_cache(self):
        r = self.ask("long.test")
        self.assertAnswer(r, "A", ["127.0.4.2"])
        self.assertEqual(stub_count(self.stub, "long.test"), 1, self.stub.queries())
        self.advance(60)
        self.ask("long.test")
        self.assertEqual(stub_count(self.stub, "long.test"), 1, self.stub.queries())
        self.advance(61)  # 121 s: past dns-max-ttl 2m, well inside the record's 3600 s
        self.assertAnswer(self.ask("long.test"), "A", ["127.0.4.2"])
        self.assertEqual(stub_count(self.stub, "long.test"), 2,
                         "an answer was cached beyond dns-max-ttl: %s" % self.stub.queries())

    def test_popular_names_refreshed_before_they_expire(self):
        for _ in range(3):
            self.assertAnswer(self.ask("popular.test"), "A", ["127.0.4.3"])
        self.assertEqual(stub_count(self.stub, "popular.test"), 1, self.stub.queries())
        self.advance(95)  # the last tenth of its 100 s: answered, and asked again upstream
        r = self.ask("popular.test")
        self.assertAnswer(r, "A", ["127.0.4.3"])
        self.assertTrue(0 < ttls(r)[0] <= 5, show(r))
        # the refreshed answer replaces the old one in the cache: its TTL is whole again
        deadline = time.monotonic() + 10
        while ttls(r)[0] <= 5 and time.monotonic() < deadline:
            time.sleep(0.05)
            r = self.ask("popular.test")
        self.assertEqual(ttls(r), [100], "a popular name was not refreshed before it expired"
                         + show(r))
        self.assertEqual(stub_count(self.stub, "popular.test"), 2, self.stub.queries())
        self.advance(10)  # past the first answer's expiry: the refreshed one is served
        r = self.ask("popular.test")
        self.assertAnswer(r, "A", ["127.0.4.3"])
        self.assertEqual(stub_count(self.stub, "popular.test"), 2, self.stub.queries())
        self.assertTrue(80 <= ttls(r)[0] <= 90, "not the refreshed answer" + show(r))

    def test_negative_answers_cached_servfail_not(self):
        r = self.ask("nosuch.example")
        self.assertRcode(r, "NXDOMAIN")
        r = self.ask("nodata.test", "TXT")
        self.assertRcode(r, "NOERROR")
        self.assertEqual(r.answer, [], show(r))
        self.advance(10)
        self.assertRcode(self.ask("nosuch.example"), "NXDOMAIN")
        self.assertRcode(self.ask("nodata.test", "TXT"), "NOERROR")
        self.assertEqual(stub_count(self.stub, "nosuch.example"), 1,
                         "NXDOMAIN not cached for its SOA TTL: %s" % self.stub.queries())
        self.assertEqual(stub_count(self.stub, "nodata.test", "TXT"), 1,
                         "NODATA not cached for its SOA TTL: %s" % self.stub.queries())
        self.advance(21)  # 31 s: past the SOA's 30 s
        self.assertRcode(self.ask("nosuch.example"), "NXDOMAIN")
        self.assertEqual(stub_count(self.stub, "nosuch.example"), 2, self.stub.queries())
        # SERVFAIL is passed on and never cached.
        for _ in range(2):
            self.assertRcode(self.ask("broken.test"), "SERVFAIL")
        self.assertGreaterEqual(stub_count(self.stub, "broken.test"), 2,
                         "a SERVFAIL was answered from the cache: %s" % self.stub.queries())


# ============================================================================ failover

class TestUpstreamFailover(DnsCase):
    """Two upstreams; the first dies; the second answers and the first is reported down."""

    RESOLVER = False

    @classmethod
    def prepare_extra(cls):
        d1 = cls.dir / "first"
        d2 = cls.dir / "second"
        d1.mkdir()
        d2.mkdir()
        cls.first = StubDNS(["*.test A 127.0.5.1"], d1)
        cls.addClassCleanup(cls.first.stop)
        cls.second = StubDNS(["*.test A 127.0.5.2"], d2)
        cls.addClassCleanup(cls.second.stop)
        return ("dns-upstream 127.0.0.1:%d 127.0.0.1:%d\ndns-timeout 200ms\n"
                % (cls.first.port, cls.second.port))

    def up(self, stub):
        key = 'haven_dns_upstream_up{server="127.0.0.1:%d"}' % stub.port
        m = self.h.metrics()
        self.assertIn(key, m, "no %s in /metrics: %s" % (key, sorted(m)))
        return m[key]

    def test_first_dies_second_answers(self):
        # The first in order of preference answers while it is alive.
        self.assertAnswer(self.ask("before.test"), "A", ["127.0.5.1"])
        self.assertEqual(self.up(self.first), 1)
        self.assertEqual(self.up(self.second), 1)
        self.first.stop()
        answered = None
        for i in range(3):
            try:
                answered = self.ask("after%d.test" % i)
                break
            except AssertionError:
                continue
        self.assertIsNotNone(answered, "no answer in 3 tries once the first upstream died")
        self.assertAnswer(answered, "A", ["127.0.5.2"])
        # After repeated failures the first is marked down.
        deadline = time.monotonic() + WAIT
        i = 0
        while self.up(self.first) != 0:
            self.assertLess(time.monotonic(), deadline,
                            "haven_dns_upstream_up for the dead upstream never went to 0")
            i += 1
            self.ask("down%d.test" % i, tries=3)
        self.assertEqual(self.up(self.second), 1)
        self.assertAnswer(self.ask("later.test"), "A", ["127.0.5.2"])
        # The first comes back on its port: the probe marks it up and it is preferred again.
        d = self.dir / "first-again"
        d.mkdir()
        self.first = StubDNS(["*.test A 127.0.5.1"], d, ["--port", str(self.first.port)])
        self.addCleanup(self.first.stop)
        deadline = time.monotonic() + WAIT
        while self.up(self.first) != 1:
            self.assertLess(time.monotonic(), deadline,
                            "haven_dns_upstream_up for the revived upstream never went to 1")
            time.sleep(0.5)
        self.assertAnswer(self.ask("back.test"), "A", ["127.0.5.1"])
        # Nothing is answered when no upstream answers: SERVFAIL, not silence.
        self.first.stop()
        self.second.stop()
        r = self.ask("nobody.test", tries=2)
        self.assertRcode(r, "SERVFAIL")
        self.assertGreaterEqual(metric(self.h, "haven_dns_queries_total", answer="servfail"), 1)


if __name__ == "__main__":
    unittest.main()
