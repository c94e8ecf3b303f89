"""`haven serve`: the filtering proxy, driven as browsers drive it.

Each test starts its own `haven serve` (proxyenv.Haven) on a free port of 127.0.0.1, with the
policy proxyenv.POLICY (pupils by default; staff, lab, signin), a category database compiled from
small lists (casino.test gambling, games.test games, social.test social-networks, abuse.test
iwf), and the stub DNS (tests/system/stubdns.py) answering 127.0.0.1 for *.test and the
safe-search hosts. The origins are local: an HTTP/1.1 server with test routes and a TCP echo
server. Tests assert what a user (or a network manager) sees, never how long things take:
every wait is a hang guard.

A test whose message starts with "BUG:" describes behaviour that is wrong today.
"""

import base64
import hashlib
import html
import json
import re
import shutil
import selectors
import signal
import socket
import tempfile
import threading
import time
import unittest
from urllib.parse import urlencode

import proxyenv
from helpers import HavenTestCase, describe, run_haven, write
from proxyenv import (POLICY, REF_RE, WAIT, EchoServer, Haven, Origin, StubDNS,
                      compile_lists, free_port, pattern_bytes, request_bytes)

CEOP = "ceop.police.uk"
RHC = "reportharmfulcontent.com"
IWF_TEXT = "Internet Watch Foundation"

DB = None
DNS = None
ORIGIN = None
ECHO = None
_MODULE_TMP = None


def setUpModule():
    global DB, DNS, ORIGIN, ECHO, _MODULE_TMP
    _MODULE_TMP = tempfile.mkdtemp(prefix="haven-proxytest-")
    DB = compile_lists(_MODULE_TMP)
    DNS = StubDNS(proxyenv.ZONE, _MODULE_TMP)
    ORIGIN = Origin()
    ECHO = EchoServer()


def tearDownModule():
    for thing in (ECHO, ORIGIN, DNS):
        if thing:
            thing.stop()
    if _MODULE_TMP:
        shutil.rmtree(_MODULE_TMP, True)


def site(host="site.test", path="/hello"):
    """A URL on the local origin under host (the stub DNS maps *.test to 127.0.0.1)."""
    return "http://%s:%d%s" % (host, ORIGIN.port, path)


class ProxyCase(HavenTestCase):
    """Starts a fresh haven per test with start()."""

    def start(self, extra="", policy=POLICY, resolver=True, workers=2):
        h = Haven(self.tmp, DB, policy, DNS.port if resolver else None, extra, workers)
        self.addCleanup(h.kill)
        h.start()
        self.addCleanup(h.stop)  # runs first: SIGTERM, exit 0, no sanitizer report
        self.h = h
        return h

    def ref_of(self, r):
        m = REF_RE.search(r.text)
        self.assertIsNotNone(m, "no reference HVN-XXXX-XXXX in the page: %r" % r)
        return m.group(0)


# ============================================================================ command line

class TestServeCommandLine(HavenTestCase):

    def setUp(self):
        super().setUp()
        self.h = Haven(self.tmp, DB)

    def test_check_config_ok(self):
        p = run_haven(["serve", "--config", self.h.config, "--check-config"])
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertTrue(p.stdout.startswith("%s: ok" % self.h.config), describe(p))

    def test_check_config_error_names_file_and_line(self):
        text = self.h.config.read_text() + "timeout-keepalive forever\n"
        bad = write(self.tmp / "bad.conf", text)
        line = text.count("\n")
        p = run_haven(["serve", "--config", bad, "--check-config"])
        self.assertEqual(p.returncode, 1, describe(p))
        self.assertIn("%s:%d:" % (bad, line), p.stderr, describe(p))

    def test_check_config_broken_policy(self):
        write(self.h.policy, POLICY + "group broken {\n    block no-such-category\n}\n")
        p = run_haven(["serve", "--config", self.h.config, "--check-config"])
        self.assertEqual(p.returncode, 1, describe(p))
        self.assertIn("no-such-category", p.stderr, describe(p))

    def test_dump_config(self):
        p = run_haven(["serve", "--config", self.h.config, "--dump-config"])
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertIn("127.0.0.1:%d" % self.h.port, p.stdout)
        for opt in ("timeout-request-head", "max-connections", "status-allow"):
            self.assertIn(opt, p.stdout)


# ============================================================================ allow, block, warn

class TestDecisions(ProxyCase):

    def test_allowed_request_body_intact(self):
        h = self.start()
        r = h.get(site(path="/big?n=300001"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, pattern_bytes(300001))
        self.assertIn("haven", r.header("Via", ""), r.headers)
        rec = h.wait_log(lambda x: "/big?n=300001" in x["url"])
        self.assertEqual(rec["action"], "allow", rec)
        self.assertEqual(rec["status"], 200, rec)
        self.assertGreaterEqual(rec["bytes_out"], 300001, rec)
        self.assertEqual(rec["group"], "pupils", rec)

    def test_block_page_and_log(self):
        h = self.start()
        before = len(ORIGIN.seen)
        url = site("casino.test", "/roulette?table=1")
        r = h.get(url)
        self.assertEqual(r.status, 403, r)
        self.assertTrue(r.header("Content-Type", "").startswith("text/html"), r.headers)
        page = html.unescape(r.text)
        self.assertIn("Hillside Test Academy", page)
        self.assertIn("Gambling", page)  # the category in plain words
        self.assertIn("casino.test is in the category Gambling", page)  # the reason
        self.assertIn(url, page)
        ref = self.ref_of(r)
        self.assertIn(CEOP, page)
        self.assertIn(RHC, page)
        self.assertIn('action="http://haven.invalid/haven/request"', r.text)
        self.assertIn('action="http://haven.invalid/haven/concern"', r.text)
        self.assertIn('name="reason"', r.text)
        self.assertIn('name="details"', r.text)
        self.assertEqual(len(ORIGIN.seen), before, "a blocked request reached the origin")
        rec = h.wait_ref(ref)
        self.assertEqual(rec["action"], "block", rec)
        self.assertEqual(rec["categories"], ["gambling"], rec)
        self.assertEqual(rec["status"], 403, rec)
        self.assertIn("policy.conf:", rec["rule"], rec)
        self.assertIn("casino.test is in the category Gambling", rec["reason"], rec)
        self.assertEqual(rec["bytes_out"], len(r.head) + 4 + len(r.body), rec)
        self.assertEqual(rec["url"], url, rec)
        self.assertFalse(rec["tunnel"], rec)

    def test_block_page_headers(self):
        h = self.start()
        r = h.get(site("casino.test"))
        self.assertEqual(r.status, 403, r)
        self.assertEqual(r.header("Cache-Control"), "no-store", r.headers)
        # page.h: the pages are written to work under PAGE_HTML_CSP, which the proxy sends.
        self.assertIsNotNone(r.header("Content-Security-Policy"),
                             "BUG: the block page is sent without the Content-Security-Policy "
                             "header that src/proxy/page.h says the proxy sends: %r" % r.headers)

    def test_locked_tier_iwf_splash(self):
        h = self.start()
        url = site("abuse.test", "/img/1")
        r = h.get(url)
        self.assertEqual(r.status, 403, r)
        page = html.unescape(r.text)
        self.assertIn(IWF_TEXT, page)
        ref = self.ref_of(r)
        self.assertNotIn("/haven/request", r.text, "locked blocks offer no request-access form")
        self.assertNotIn("abuse.test", page, "locked blocks do not show the URL")
        rec = h.wait_ref(ref)
        self.assertEqual(rec["action"], "block", rec)
        self.assertEqual(rec["tier"], "locked", rec)
        self.assertIn("iwf", rec["categories"], rec)

    def test_warn_then_continue(self):
        h = self.start()
        url = site("games.test", "/hello")
        r = h.get(url)
        self.assertEqual(r.status, 403, r)
        m = re.search(r'href="(http://haven\.invalid/haven/continue\?ref=(HVN-[0-9A-Z-]+))"', r.text)
        self.assertIsNotNone(m, "no continue link on the warn page: %r" % r.text[-3000:])
        link, ref = html.unescape(m.group(1)), m.group(2)
        self.assertIn("Games", html.unescape(r.text))
        rec = h.wait_ref(ref)
        self.assertEqual(rec["action"], "warn", rec)
        self.assertEqual(rec["status"], 403, rec)

        c = h.get(link)
        self.assertEqual(c.status, 302, c)
        self.assertEqual(c.header("Location"), url, c.headers)
        ok = h.get(url)
        self.assertEqual(ok.status, 200, ok)
        self.assertIn(b"hello from origin", ok.body)
        # The same site, another page: still allowed for this client.
        self.assertEqual(h.get(site("games.test", "/echo")).status, 200)
        rec = h.wait_log(lambda x: x["url"] == url and x["status"] == 200)
        self.assertEqual(rec["action"], "warn", rec)
        self.assertIn("continued", rec["reason"], rec)

    def test_continue_with_unknown_ref(self):
        h = self.start()
        r = h.get("http://haven.invalid/haven/continue?ref=HVN-0000-0000")
        self.assertEqual(r.status, 400, r)
        self.assertIn("expired", r.text)

    def _post_form(self, h, path, fields):
        body = urlencode(fields).encode()
        return h.request("POST", "http://haven.invalid" + path,
                         [("Content-Type", "application/x-www-form-urlencoded")], body)

    def test_request_access_form(self):
        h = self.start()
        url = site("casino.test", "/odds")
        ref = self.ref_of(h.get(url))
        r = self._post_form(h, "/haven/request",
                            {"ref": ref, "url": url, "reason": "Maths lesson on probability"})
        self.assertEqual(r.status, 200, r)
        self.assertIn("request has been sent", html.unescape(r.text).lower())
        rec = h.wait_log(lambda x: x["reason"].startswith("request:"), "request-access record")
        # filed under the block page's reference and the blocked address, for staff to match up
        self.assertEqual(rec["ref"], ref, rec)
        self.assertEqual(rec["url"], url, rec)
        self.assertIn("probability", rec["reason"], rec)
        self.assertEqual(rec["method"], "POST", rec)

    def test_concern_form(self):
        h = self.start()
        url = site("casino.test", "/odds")
        ref = self.ref_of(h.get(url))
        r = self._post_form(h, "/haven/concern",
                            {"ref": ref, "url": url, "details": "Someone sent me this link"})
        self.assertEqual(r.status, 200, r)
        self.assertIn("thank you for telling us", html.unescape(r.text).lower())
        rec = h.wait_log(lambda x: x["reason"].startswith("concern:"), "concern record")
        self.assertEqual(rec["ref"], ref, rec)
        self.assertEqual(rec["url"], url, rec)
        self.assertIn("Someone", rec["reason"], rec)

    def test_concern_details_kept_in_full(self):
        # The form lets a pupil write up to 1,000 characters: all of them must reach the DSL.
        h = self.start()
        url = site("casino.test", "/chat")
        ref = self.ref_of(h.get(url))
        details = ("Someone I do not know sent me this link and asked to meet me after school. "
                   * 13)[:950]
        r = self._post_form(h, "/haven/concern", {"ref": ref, "url": url, "details": details})
        self.assertEqual(r.status, 200, r)
        rec = h.wait_log(lambda x: x["reason"].startswith("concern:"), "concern record")
        self.assertEqual(rec["ref"], ref, rec)
        got = rec["reason"][len("concern: "):]
        self.assertTrue(got == details,
                        "BUG: the pupil's concern is cut short in the access log (the record "
                        "keeps %d of %d characters; the reason field holds 512 bytes of the "
                        "URL-encoded form): %r" % (len(got), len(details), rec["reason"][-200:]))

    def test_log_bytes_in_counts_the_request(self):
        h = self.start()
        raw = request_bytes("GET", site("casino.test", "/count"),
                            headers=[("Connection", "close"), ("X-Pad", "p" * 300)])
        c = h.conn()
        try:
            c.send(raw)
            ref = self.ref_of(c.read_response())
        finally:
            c.close()
        rec = h.wait_ref(ref)
        self.assertGreaterEqual(rec["bytes_in"], len(raw),
                                "BUG: bytes_in is %d for a %d-byte request (docs/logging.md: "
                                "bytes received from the client, the request and any upload)"
                                % (rec["bytes_in"], len(raw)))

    def test_network_range_decides_group(self):
        # Without a range, 127.0.0.1 is a pupil and social.test is allowed.
        h = self.start()
        self.assertEqual(h.get(site("social.test")).status, 200)
        h.stop()
        # With 127.0.0.0/8 mapped to lab, it is blocked.
        h = self.start("network 127.0.0.0/8 lab")
        r = h.get(site("social.test"))
        self.assertEqual(r.status, 403, r)
        rec = h.wait_ref(self.ref_of(r))
        self.assertEqual(rec["group"], "lab", rec)
        self.assertEqual(rec["categories"], ["social-networks"], rec)

    def test_ip_session_takes_effect_without_a_signal(self):
        users = self.tmp / "var" / "users.sqlite"
        users.parent.mkdir(parents=True, exist_ok=True)
        p = run_haven(["users", "add", "bob", "--group", "staff", "--db", users])
        self.assertEqual(p.returncode, 0, describe(p))
        h = self.start()
        self.assertEqual(h.get(site("casino.test")).status, 403)  # a pupil
        p = run_haven(["session", "add", "bob", "127.0.0.1", "--db", users])
        self.assertEqual(p.returncode, 0, describe(p))
        h.wait_stderr("users and sessions reloaded")
        self.assertEqual(h.get(site("casino.test")).status, 200)  # staff now
        p = run_haven(["session", "del", "127.0.0.1", "--db", users])
        self.assertEqual(p.returncode, 0, describe(p))
        deadline = time.monotonic() + WAIT
        while h.get(site("casino.test")).status != 403:
            self.assertLess(time.monotonic(), deadline, "the ended session still applies")
            time.sleep(0.2)

    def test_ip_session_takes_effect_after_sighup(self):
        users = self.tmp / "var" / "users.sqlite"
        users.parent.mkdir(parents=True, exist_ok=True)
        p = run_haven(["users", "add", "alice", "--group", "staff", "--db", users])
        self.assertEqual(p.returncode, 0, describe(p))
        h = self.start()
        self.assertEqual(h.get(site("casino.test")).status, 403)  # a pupil
        p = run_haven(["session", "add", "alice", "127.0.0.1", "--db", users])
        self.assertEqual(p.returncode, 0, describe(p))
        out = h.hup()
        self.assertIn("reloaded", out)
        r = h.get(site("casino.test", "/hello?room=staff"))
        self.assertEqual(r.status, 200, r)
        rec = h.wait_log(lambda x: x["url"].endswith("/hello?room=staff"))
        self.assertEqual((rec["user"], rec["group"]), ("alice", "staff"), rec)


# ============================================================================ CONNECT

class TestConnect(ProxyCase):

    def test_tunnel_both_ways_and_half_close(self):
        h = self.start()
        c, r = h.connect("echo.test:%d" % ECHO.port)
        self.assertEqual(r.status, 200, r)
        data = pattern_bytes(200000, b"tunnel")
        c.send(data)
        got = c._exact(len(data))
        self.assertEqual(got, data)
        c.sock.shutdown(socket.SHUT_WR)  # half-close: the answer must still come
        rest = b""
        c.sock.settimeout(WAIT)
        while True:
            chunk = c.sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        self.assertEqual(c.buf + rest, b"\nechoed %d bytes\n" % len(data))
        c.close()
        rec = h.wait_log(lambda x: x["method"] == "CONNECT")
        self.assertTrue(rec["tunnel"], rec)
        self.assertEqual(rec["url"], "echo.test:%d" % ECHO.port, rec)
        self.assertEqual(rec["status"], 200, rec)
        self.assertGreaterEqual(rec["bytes_out"], len(data), rec)
        self.assertGreaterEqual(rec["bytes_in"], len(data), rec)

    def test_bulk_tunnel_is_spliced_intact(self):
        # Past 256 KiB a tunnel is relayed by the kernel (splice): bytes and half-close intact.
        h = self.start()
        c, r = h.connect("echo.test:%d" % ECHO.port)
        self.assertEqual(r.status, 200, r)
        n = 8 * 1024 * 1024
        data = pattern_bytes(n, b"splice")
        sender = threading.Thread(target=c.sock.sendall, args=(data,))
        sender.start()
        got = c._exact(n)
        sender.join(WAIT)
        self.assertEqual(hashlib.sha256(got).hexdigest(), hashlib.sha256(data).hexdigest())
        self.assertEqual(h.metrics()["haven_tunnels_spliced_total"], 1)
        c.sock.shutdown(socket.SHUT_WR)
        rest = b""
        c.sock.settimeout(WAIT)
        while True:
            chunk = c.sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        self.assertEqual(c.buf + rest, b"\nechoed %d bytes\n" % n)
        c.close()
        rec = h.wait_log(lambda x: x["method"] == "CONNECT")
        authority = "echo.test:%d" % ECHO.port
        self.assertEqual(rec["bytes_in"],
                         n + len(request_bytes("CONNECT", authority, authority)), rec)
        self.assertEqual(rec["bytes_out"], n + len(b"\nechoed %d bytes\n" % n) +
                         len(b"HTTP/1.1 200 Connection established\r\nVia: 1.1 haven\r\n\r\n"),
                         rec)
        self.assertEqual(h.metrics()["haven_tunnels"], 0)

    def test_bytes_sent_with_the_connect_head(self):
        # A client may send its first bytes (a TLS ClientHello) right after the CONNECT head.
        h = self.start()
        c = h.conn()
        try:
            authority = "echo.test:%d" % ECHO.port
            c.send(request_bytes("CONNECT", authority, authority) + b"early bytes")
            status, _, _, _ = c.read_head()
            self.assertEqual(status, 200)
            self.assertEqual(c._exact(11), b"early bytes")
        finally:
            c.close()

    def test_tunnel_gauge_returns_to_zero(self):
        h = self.start()
        c, r = h.connect("echo.test:%d" % ECHO.port)
        self.assertEqual(r.status, 200, r)
        c.send(b"ping")
        self.assertEqual(c._exact(4), b"ping")
        self.assertEqual(h.metrics()["haven_tunnels"], 1)
        c.sock.shutdown(socket.SHUT_WR)
        self.assertTrue(c.closed_by_peer())
        c.close()
        h.wait_log(lambda x: x["method"] == "CONNECT")  # the tunnel has ended and is logged
        self.assertEqual(h.metrics()["haven_tunnels"], 0,
                         "BUG: haven_tunnels still counts a tunnel that ended with a half-close "
                         "(proxy_finish frees the exchange before proxy_close, which is where "
                         "the gauge is decremented)")

    def test_blocked_connect(self):
        h = self.start()
        c, r = h.connect("casino.test:443")
        c.close()
        self.assertEqual(r.status, 403, r)
        ref = self.ref_of(r)
        rec = h.wait_ref(ref)
        self.assertEqual(rec["action"], "block", rec)
        self.assertEqual(rec["method"], "CONNECT", rec)
        self.assertTrue(rec["tunnel"], rec)

    def test_connect_port_other_than_443_blocked_by_default(self):
        # pupils without a connect-ports line: HTTPS only to port 443.
        h = self.start(policy=POLICY.replace("    connect-ports any\n", "", 1))
        c, r = h.connect("echo.test:%d" % ECHO.port)
        c.close()
        self.assertEqual(r.status, 403, r)
        rec = h.wait_ref(self.ref_of(r))
        self.assertEqual(rec["action"], "block", rec)
        self.assertTrue(rec["circumvention"], rec)
        self.assertEqual(rec["rule"], "connect-ports 443 (the default)", rec)
        self.assertIn("port %d" % ECHO.port, rec["reason"])

    def _through_tunnel(self, h, authority, host):
        c, r = h.connect(authority)
        self.assertEqual(r.status, 200, "%s: %r" % (authority, r))
        c.send(request_bytes("GET", "/echo", host, [("Connection", "close")]))
        resp = c.read_response()
        c.close()
        return resp

    def test_connect_safe_search_redirection(self):
        h = self.start()
        cases = [("www.google.co.uk", "forcesafesearch.google.com"),
                 ("m.youtube.com", "restrict.youtube.com"),  # pupils: youtube strict
                 ("www.bing.com", "strict.bing.com"),
                 ("duckduckgo.com", "safe.duckduckgo.com")]
        for name, forced in cases:
            with self.subTest(name=name):
                r = self._through_tunnel(h, "%s:%d" % (name, ORIGIN.port), name)
                self.assertEqual(r.status, 200, r)
                self.assertIn(b'"origin"', r.body)  # the local origin answered
                self.assertTrue(DNS.asked(forced), "%s was never looked up" % forced)
                self.assertFalse(DNS.asked(name), "%s was looked up: not redirected" % name)

    def test_connect_youtube_moderate(self):
        h = self.start("network 127.0.0.0/8 lab")  # lab: youtube moderate
        r = self._through_tunnel(h, "www.youtube-nocookie.com:%d" % ORIGIN.port,
                                 "www.youtube-nocookie.com")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(DNS.asked("restrictmoderate.youtube.com"))

    def test_connect_no_redirection_without_safe_search(self):
        h = self.start("network 127.0.0.0/8 staff")  # staff: safe-search off
        c, r = h.connect("www.google.ie:%d" % ORIGIN.port)
        c.close()
        # www.google.ie is not in the stub zone: the proxy really asked for it.
        self.assertEqual(r.status, 502, r)
        self.assertTrue(DNS.asked("www.google.ie"))


# ============================================================================ safe search (HTTP)

class TestSafeSearchHTTP(ProxyCase):

    def test_google_query_gets_safe_active(self):
        h = self.start()
        r = h.get("http://www.google.com:%d/search?q=cats&safe=off&hl=en" % ORIGIN.port)
        self.assertEqual(r.status, 200, r)
        info = json.loads(r.body)
        self.assertEqual(info["request_line"], "GET /search?q=cats&hl=en&safe=active HTTP/1.1")
        rec = h.wait_log(lambda x: "/search?q=cats" in x["url"])
        self.assertIn("google", rec["safe_search"], rec)
        self.assertEqual(rec["search"], "cats", rec)  # search terms, for the monitor

    def test_youtube_restrict_header(self):
        h = self.start()
        r = h.get("http://www.youtube.com:%d/watch?v=abc" % ORIGIN.port,
                  [("YouTube-Restrict", "Off")])  # a client's own value is replaced
        self.assertEqual(r.status, 200, r)
        info = json.loads(r.body)
        values = [v for k, v in info["headers"] if k.lower() == "youtube-restrict"]
        self.assertEqual(values, ["Strict"], info["headers"])

    def test_no_rewrite_without_safe_search(self):
        h = self.start("network 127.0.0.0/8 staff")
        r = h.get("http://www.google.com:%d/search?q=cats&safe=off" % ORIGIN.port)
        info = json.loads(r.body)
        self.assertEqual(info["request_line"], "GET /search?q=cats&safe=off HTTP/1.1")


# ============================================================================ haven's own pages

class TestLocalPages(ProxyCase):

    def test_pac_and_wpad(self):
        h = self.start('pac-direct intranet.school.example')
        pac = h.local("/proxy.pac")
        wpad = h.local("/wpad.dat")
        for r in (pac, wpad):
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.header("Content-Type"), "application/x-ns-proxy-autoconfig")
            self.assertIn("FindProxyForURL", r.text)
            self.assertIn("PROXY 127.0.0.1:%d" % h.port, r.text)
            self.assertIn("intranet.school.example", r.text)
        self.assertEqual(pac.body, wpad.body)

    def test_metrics_counters_move(self):
        h = self.start()
        m0 = h.metrics()
        for name in ("haven_requests_total", 'haven_reloads_total{result="ok"}',
                     'haven_upstream_errors_total{kind="connect"}', "haven_connections"):
            self.assertIn(name, m0)
        r = h.local("/metrics")
        self.assertTrue(r.header("Content-Type").startswith("text/plain; version=0.0.4"))
        self.assertIn("# TYPE haven_requests_total counter", r.text)
        h.get(site("casino.test"))
        h.get(site("casino.test"))
        h.get(site())
        m1 = h.metrics()
        self.assertGreaterEqual(m1["haven_requests_total"] - m0["haven_requests_total"], 3)
        key = 'haven_verdicts_total{action="block",category="gambling"}'
        self.assertEqual(m1.get(key, 0) - m0.get(key, 0), 2, m1)

    def test_status_pages_only_for_status_allow(self):
        h = self.start("status-allow 10.99.0.0/16")
        for path in ("/metrics", "/haven/status"):
            r = h.local(path)
            self.assertEqual(r.status, 403, r)
            self.assertNotIn("haven_requests_total", r.text)

    def test_status_page(self):
        h = self.start()
        r = h.local("/haven/status")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.header("Content-Type").startswith("text/html"))
        self.assertIn("Hillside Test Academy", html.unescape(r.text))

    def test_unknown_local_path(self):
        h = self.start()
        r = h.local("/nothing-here")
        self.assertEqual(r.status, 404, r)


# ============================================================================ HTTP/1.1 plumbing

class TestHTTP(ProxyCase):

    def test_keep_alive(self):
        h = self.start()
        c = h.conn()
        try:
            for i, url in enumerate([site(), site("casino.test"), site(path="/echo?i=3"),
                                     site(path="/big?n=70000")]):
                c.send(request_bytes("GET", url))
                r = c.read_response()
                self.assertEqual(r.status, 403 if i == 1 else 200, r)
                self.assertNotEqual((r.header("Connection") or "").lower(), "close", r.headers)
            self.assertEqual(r.body, pattern_bytes(70000))
        finally:
            c.close()

    def test_pipelining(self):
        h = self.start()
        c = h.conn()
        try:
            c.send(request_bytes("GET", site(path="/echo?n=1")) +
                   request_bytes("GET", site("casino.test", "/second")) +
                   request_bytes("GET", site(path="/echo?n=3"), headers=[("Connection", "close")]))
            r1, r2, r3 = c.read_response(), c.read_response(), c.read_response()
        finally:
            c.close()
        self.assertEqual(r1.status, 200, r1)
        self.assertIn(b"/echo?n=1 ", r1.body)
        self.assertEqual(r2.status, 403, r2)
        self.assertEqual(r3.status, 200, r3)
        self.assertIn(b"/echo?n=3 ", r3.body)

    def test_pipelined_after_request_bodies(self):
        h = self.start()
        c = h.conn()
        try:
            c.send(request_bytes("POST", site(path="/upload"), body=b"x" * 1000) +
                   request_bytes("POST", site(path="/upload"),
                                 headers=[("Transfer-Encoding", "chunked")],
                                 body=b"5\r\nhello\r\n0\r\n\r\n") +
                   request_bytes("GET", site(path="/echo?after=bodies")))
            r1, r2, r3 = c.read_response(), c.read_response(), c.read_response()
        finally:
            c.close()
        self.assertEqual(json.loads(r1.body)["body_len"], 1000)
        self.assertEqual(json.loads(r2.body)["body_len"], 5)
        self.assertEqual(r3.status, 200, r3)
        self.assertIn(b"after=bodies", r3.body)

    def test_head_then_get_on_one_connection(self):
        h = self.start()
        c = h.conn()
        try:
            c.send(request_bytes("HEAD", site()))
            r = c.read_response("HEAD")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.header("Content-Length"), str(len("hello from origin origin")))
            c.send(request_bytes("GET", site()))
            self.assertEqual(c.read_response().body, b"hello from origin origin")
        finally:
            c.close()

    def test_expect_100_continue(self):
        h = self.start()
        c = h.conn()
        try:
            body = pattern_bytes(100000, b"expect")
            c.send(request_bytes("POST", site(path="/upload"),
                                 headers=[("Expect", "100-continue"),
                                          ("Content-Length", str(len(body)))]))
            # The client waits for 100 Continue before it sends the body.
            status, _, _, _ = c.read_head()
            self.assertEqual(status, 100)
            c.send(body)
            r = c.read_response("POST")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(json.loads(r.body)["body_len"], len(body))
        finally:
            c.close()

    def test_chunked_upload(self):
        h = self.start()
        data = pattern_bytes(150000, b"up")
        body = b""
        off, step = 0, 5
        while off < len(data):
            part = data[off:off + step]
            body += b"%x\r\n" % len(part) + part + b"\r\n"
            off += len(part)
            step = step * 2 + 1
        body += b"0\r\n\r\n"
        r = h.request("POST", site(path="/upload"), [("Transfer-Encoding", "chunked")], body)
        self.assertEqual(r.status, 200, r)
        info = json.loads(r.body)
        self.assertEqual(info["body_len"], len(data), info)
        self.assertEqual(info["body_sha256"], hashlib.sha256(data).hexdigest())

    def test_chunked_download(self):
        h = self.start()
        r = h.get(site(path="/chunked?n=123457"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.header("Transfer-Encoding") or "").lower(), "chunked", r.headers)
        self.assertEqual(r.body, pattern_bytes(123457))

    def test_close_delimited_download(self):
        h = self.start()
        r = h.get(site(path="/close?n=99999"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, pattern_bytes(99999))

    def test_100mb_download_integrity(self):
        h = self.start()
        n = 100 * 1024 * 1024
        want = hashlib.sha256()
        for part in proxyenv.iter_pattern(n):
            want.update(part)
        got = hashlib.sha256()
        size = [0]

        def sink(b):
            got.update(b)
            size[0] += len(b)
        c = h.conn()
        try:
            c.send(request_bytes("GET", site(path="/big?n=%d" % n), headers=[("Connection", "close")]))
            r = c.read_response(sink=sink)
        finally:
            c.close()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(size[0], n)
        self.assertEqual(got.hexdigest(), want.hexdigest())

    def test_20mb_upload(self):
        h = self.start()
        data = pattern_bytes(20 * 1024 * 1024, b"upload")
        r = h.request("PUT", site(path="/upload"), [], data)
        self.assertEqual(r.status, 200, r)
        info = json.loads(r.body)
        self.assertEqual(info["body_len"], len(data))
        self.assertEqual(info["body_sha256"], hashlib.sha256(data).hexdigest())

    def test_request_smuggling_rejected_and_logged(self):
        h = self.start()
        t = site
        cases = {
            "cl-and-te": "POST %s HTTP/1.1\r\nHost: site.test\r\nContent-Length: 5\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" % t(path="/s1"),
            "duplicate-cl": "POST %s HTTP/1.1\r\nHost: site.test\r\nContent-Length: 5\r\n"
                            "Content-Length: 6\r\n\r\nhello!" % t(path="/s2"),
            "obs-fold": "GET %s HTTP/1.1\r\nHost: site.test\r\nX-A: one\r\n two\r\n\r\n"
                        % t(path="/s3"),
            "bare-lf": "GET %s HTTP/1.1\nHost: site.test\nX-A: one\n\n" % t(path="/s4"),
            "xchunked": "POST %s HTTP/1.1\r\nHost: site.test\r\nTransfer-Encoding: xchunked"
                        "\r\n\r\n0\r\n\r\n" % t(path="/s5"),
        }
        before = list(ORIGIN.seen)
        statuses = {}
        for name, raw in cases.items():
            with self.subTest(case=name):
                c = h.conn()
                try:
                    c.send(raw)
                    r = c.read_response()
                    statuses[name] = r.status
                    self.assertIn(r.status, (400, 501), "%s: %r" % (name, r))
                    self.assertTrue(c.closed_by_peer(), "%s: connection left open" % name)
                finally:
                    c.close()
        new = [s for s in ORIGIN.seen if s not in before]
        self.assertFalse([s for s in new if "/s" in s and s.split()[1][:3] in
                          ("/s1", "/s2", "/s3", "/s4", "/s5")],
                         "a smuggling attempt reached the origin: %r" % new)
        # Each rejection is in the access log with its status.
        for name, status in statuses.items():
            with self.subTest(log=name):
                h.wait_log(lambda x, s=status: x["status"] == s, "a %d record for %s"
                           % (status, name))
        recs = [x for x in h.log_records() if x["status"] in (400, 501)]
        self.assertGreaterEqual(len(recs), len(cases), recs)

    def test_long_request_line_414(self):
        h = self.start()
        r = h.get(site(path="/" + "a" * 9000))
        self.assertEqual(r.status, 414, r)

    def test_large_header_block_431(self):
        h = self.start()
        headers = [("X-Filler-%d" % i, "b" * 900) for i in range(80)]  # ~73 KB > 64K
        r = h.get(site(), headers)
        self.assertEqual(r.status, 431, r)

    def test_slow_request_head_closed(self):
        h = self.start("timeout-request-head 1s")
        c = h.conn()
        try:
            c.send("GET %s HTTP/1.1\r\nHost: site" % site())
            self.assertTrue(c.closed_by_peer(), "a half-sent head kept the connection open")
        finally:
            c.close()

    def test_idle_keepalive_closed(self):
        h = self.start("timeout-keepalive 1s")
        c = h.conn()
        try:
            c.send(request_bytes("GET", site()))
            self.assertEqual(c.read_response().status, 200)
            self.assertTrue(c.closed_by_peer(), "an idle keep-alive connection stayed open")
        finally:
            c.close()

    def test_1000_concurrent_connections(self):
        h = self.start()
        n = 1000
        socks = []
        sel = selectors.DefaultSelector()
        try:
            for i in range(n):
                s = socket.create_connection(("127.0.0.1", h.port), timeout=WAIT)
                socks.append(s)
            # Every connection is open before any request is sent.
            for i, s in enumerate(socks):
                url = site("casino.test", "/c%d" % i) if i % 4 == 0 else site(path="/echo?c=%d" % i)
                s.sendall(request_bytes("GET", url, headers=[("Connection", "close")]))
                s.setblocking(False)
                sel.register(s, selectors.EVENT_READ, [i, b""])
            done = {}
            deadline = time.monotonic() + 120
            while len(done) < n and time.monotonic() < deadline:
                for key, _ in sel.select(1):
                    try:
                        data = key.fileobj.recv(65536)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except ConnectionError:
                        data = b""
                    if data:
                        key.data[1] += data
                    else:
                        done[key.data[0]] = key.data[1]
                        sel.unregister(key.fileobj)
        finally:
            sel.close()
            for s in socks:
                s.close()
        self.assertEqual(len(done), n, "%d of %d connections finished" % (len(done), n))
        bad = []
        for i, raw in sorted(done.items()):
            want = b"HTTP/1.1 403" if i % 4 == 0 else b"HTTP/1.1 200"
            if not raw.startswith(want) or (i % 4 and b"/echo?c=%d " % i not in raw):
                bad.append((i, raw[:120]))
        self.assertEqual(bad, [], "%d connections failed" % len(bad))

    def test_max_connections(self):
        h = self.start("max-connections 5")
        held = []
        try:
            for i in range(5):
                c = h.conn()
                c.send(request_bytes("GET", site()))
                self.assertEqual(c.read_response().status, 200)
                held.append(c)  # open, idle keep-alive
            extra = h.conn()
            self.assertTrue(extra.closed_by_peer(), "the connection over the limit stayed open")
            raw = extra.buf
            extra.close()
            self.assertTrue(raw.startswith(b"HTTP/1.1 503 "), raw)
            self.assertIn(b"busy", raw)
            held.pop().close()
            # Once one is gone, a new connection is served (after haven sees the close).
            deadline = time.monotonic() + WAIT
            while True:
                try:
                    r = h.get(site())
                    if r.status == 200:
                        break
                except (EOFError, ConnectionError):  # the 503 answer (see the end)
                    r = None
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            self.assertIsNotNone(r)
            self.assertEqual(r.status, 200, r)
        finally:
            for c in held:
                c.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        cl = re.search(rb"(?im)^content-length: *(\d+)", head)
        self.assertEqual(int(cl.group(1)), len(body),
                         "BUG: the 503 answer's Content-Length is %s but its body has %d bytes "
                         "(src/proxy/proxy.c proxy_on_connection: busy[]), so a browser waits "
                         "for bytes that never come: %r" % (cl.group(1).decode(), len(body), raw))


# ============================================================================ upstream failures

class TestUpstreamPool(ProxyCase):
    """Keep-alive connections to origins are kept per worker and reused."""

    def own_origin(self):
        o = Origin("pooled")
        self.addCleanup(o.stop)
        return o

    def wait_for(self, pred, what):
        deadline = time.monotonic() + WAIT
        while not pred():
            if time.monotonic() > deadline:
                self.fail("gave up waiting for " + what)
            time.sleep(0.05)

    def test_second_client_reuses_the_origin_connection(self):
        o = self.own_origin()
        h = self.start(workers=1)
        for _ in range(3):
            r = h.get("http://site.test:%d/echo" % o.port)
            self.assertEqual(r.status, 200, r)
            headers = {k.lower(): v for k, v in json.loads(r.body)["headers"]}
            self.assertNotIn("connection", headers)  # HTTP/1.1 keep-alive towards the origin
        self.assertEqual(len(o.peers), 3)
        self.assertEqual(len(set(o.peers)), 1, "three requests, origin ports %r" % o.peers)
        self.assertGreaterEqual(h.metrics()["haven_upstream_reused_total"], 2)

    def test_hosts_do_not_share_connections(self):
        o = self.own_origin()
        h = self.start(workers=1)
        for host in ("site.test", "other.test", "site.test"):
            self.assertEqual(h.get("http://%s:%d/hello" % (host, o.port)).status, 200)
        self.assertEqual(o.peers[0], o.peers[2])
        self.assertNotEqual(o.peers[0], o.peers[1])

    def test_stale_connection_is_retried_on_a_new_one(self):
        o = self.own_origin()
        h = self.start(workers=1)
        self.assertEqual(h.get("http://site.test:%d/drop-next" % o.port).text, "armed")
        # The pooled connection takes this request and closes without answering.
        r = h.get("http://site.test:%d/hello" % o.port)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.text, "hello from origin pooled")
        self.assertEqual(o.seen[-2:], ["GET /hello HTTP/1.1"] * 2)
        self.assertEqual(len(set(o.peers)), 2)

    def test_stale_connection_with_a_body_is_not_resent(self):
        o = self.own_origin()
        h = self.start(workers=1)
        self.assertEqual(h.get("http://site.test:%d/drop-next" % o.port).text, "armed")
        r = h.request("POST", "http://site.test:%d/upload" % o.port,
                      [("Content-Type", "text/plain")], b"not twice")
        self.assertEqual(r.status, 502, r)
        self.assertEqual(o.seen.count("POST /upload HTTP/1.1"), 1)

    def test_idle_pooled_connections_close(self):
        o = self.own_origin()
        h = self.start(extra="timeout-upstream-idle 1s", workers=1)
        self.assertEqual(h.get("http://site.test:%d/hello" % o.port).status, 200)
        self.wait_for(lambda: o.open == 0, "the idle origin connection to be closed")

    def test_pool_off(self):
        o = self.own_origin()
        h = self.start(extra="upstream-pool 0", workers=1)
        for _ in range(2):
            r = h.get("http://site.test:%d/echo" % o.port)
            headers = {k.lower(): v for k, v in json.loads(r.body)["headers"]}
            self.assertEqual(headers.get("connection"), "close")
        self.assertEqual(len(set(o.peers)), 2)
        self.assertEqual(h.metrics()["haven_upstream_reused_total"], 0)

    def test_close_delimited_response_is_not_pooled(self):
        o = self.own_origin()
        h = self.start(workers=1)
        self.assertEqual(len(h.get("http://site.test:%d/close?n=100" % o.port).body), 100)
        self.assertEqual(h.get("http://site.test:%d/hello" % o.port).status, 200)
        self.assertEqual(len(set(o.peers)), 2)


class TestUpstreamErrors(ProxyCase):

    def test_connection_refused_502(self):
        h = self.start()
        m0 = h.metrics()
        r = h.get("http://refused.test:%d/" % free_port())
        self.assertEqual(r.status, 502, r)
        self.assertIn("could not be reached", html.unescape(r.text))
        ref = self.ref_of(r)
        self.assertEqual(h.wait_ref(ref)["status"], 502)
        m1 = h.metrics()
        key = 'haven_upstream_errors_total{kind="connect"}'
        self.assertEqual(m1[key] - m0[key], 1, m1)

    def test_no_such_name_502(self):
        h = self.start()
        m0 = h.metrics()
        r = h.get("http://nowhere.example/page")
        self.assertEqual(r.status, 502, r)
        self.assertIn("no site with that name", html.unescape(r.text))
        self.ref_of(r)
        m1 = h.metrics()
        key = 'haven_upstream_errors_total{kind="dns"}'
        self.assertEqual(m1[key] - m0[key], 1, m1)

    def test_origin_too_slow_504(self):
        h = self.start("timeout-upstream-idle 1s")
        m0 = h.metrics()
        c = h.conn()
        try:
            c.send(request_bytes("GET", site(path="/slowhead?ms=4000"),
                                 headers=[("Connection", "close")]))
            try:
                r = c.read_response()
            except (EOFError, ConnectionError):
                r = None
        finally:
            c.close()
        key = 'haven_upstream_errors_total{kind="timeout"}'
        self.assertEqual(h.metrics()[key] - m0[key], 1)
        self.assertIsNotNone(r, "BUG: an origin that does not answer within timeout-upstream-idle "
                                "gets the client's connection closed with no answer at all; "
                                "expected the 504 page (page.h: 504, the site was too slow)")
        self.assertEqual(r.status, 504, r)
        self.ref_of(r)

    def test_name_lookup_timeout_answers(self):
        h = self.start("timeout-connect 1s")  # slow.example: the stub DNS never answers
        c = h.conn()
        try:
            c.send(request_bytes("GET", "http://slow.example/", headers=[("Connection", "close")]))
            try:
                r = c.read_response()
            except (EOFError, ConnectionError):
                r = None
        finally:
            c.close()
        self.assertIsNotNone(r, "BUG: a name that gets no DNS answer within timeout-connect gets "
                                "the client's connection closed with no answer; expected a "
                                "502/504 page")
        self.assertIn(r.status, (502, 504), r)
        self.ref_of(r)

    def test_truncated_response_closes_and_is_logged(self):
        h = self.start()
        c = h.conn()
        try:
            c.send(request_bytes("GET", site(path="/truncated?n=20000")))
            status, _, _, _ = c.read_head()
            self.assertEqual(status, 200)
            # The client must see the connection end, not wait for bytes that never come.
            self.assertTrue(c.closed_by_peer(), "the connection stayed open after the origin "
                                                "broke off")
            self.assertLess(len(c.buf), 20000)
        finally:
            c.close()
        h.wait_log(lambda x: "/truncated" in x["url"],
                   "BUG: no access-log record for a request whose response the origin broke "
                   "off (docs/logging.md: one record per request)")

    def test_abandoned_and_timed_out_requests_are_logged(self):
        h = self.start("timeout-upstream-idle 1s")
        # The client gives up while the origin is still thinking.
        c = h.conn()
        c.send(request_bytes("GET", site(path="/slowhead?ms=500&abandoned=1")))
        time.sleep(0.1)
        c.close()
        # The origin never answers in time.
        c = h.conn()
        c.send(request_bytes("GET", site(path="/slowhead?ms=4000&timedout=1")))
        c.closed_by_peer()
        c.close()
        for what in ("abandoned=1", "timedout=1"):
            with self.subTest(what=what):
                h.wait_log(lambda x, w=what: w in x["url"],
                           "BUG: record for the %s request (docs/logging.md: one record per "
                           "request; status 0 when no response was sent)" % what)

    def test_connect_refused_502(self):
        h = self.start()
        c, r = h.connect("refused.test:%d" % free_port())
        c.close()
        self.assertEqual(r.status, 502, r)


# ============================================================================ signals

class TestSignals(ProxyCase):

    def test_sighup_reloads_policy(self):
        h = self.start()
        self.assertEqual(h.get(site("news.test")).status, 200)
        write(h.policy, POLICY.replace('    block gambling\n    warn games\n',
                                       '    block gambling\n    warn games\n'
                                       '    block site news.test "Blocked by the head"\n', 1))
        out = h.hup()
        self.assertIn("reloaded", out)
        r = h.get(site("news.test"))
        self.assertEqual(r.status, 403, r)
        self.assertIn("Blocked by the head", html.unescape(r.text))
        self.assertEqual(h.metrics()['haven_reloads_total{result="ok"}'], 1)

    def test_sighup_under_load_drops_nothing(self):
        h = self.start()
        stop = threading.Event()
        results = {"ok": 0, "failed": []}

        def load():
            while not stop.is_set():
                try:
                    r = h.get(site(path="/echo?load=1"))
                    if r.status == 200 and b"load=1" in r.body:
                        results["ok"] += 1
                    else:
                        results["failed"].append(repr(r))
                except Exception as e:  # noqa: BLE001 - every failure counts
                    results["failed"].append(repr(e))
        threads = [threading.Thread(target=load) for _ in range(3)]
        for t in threads:
            t.start()
        try:
            for i in range(5):
                out = h.hup()
                self.assertIn("reloaded", out)
        finally:
            stop.set()
            for t in threads:
                t.join(WAIT)
        self.assertEqual(results["failed"], [])
        self.assertGreater(results["ok"], 0)
        self.assertEqual(h.metrics()['haven_reloads_total{result="ok"}'], 5)

    def test_failed_reload_keeps_serving(self):
        h = self.start()
        write(h.policy, POLICY + "group broken {\n    block no-such-category\n}\n")
        out = h.hup()
        self.assertIn("reload failed", out)
        self.assertEqual(h.get(site()).status, 200)
        self.assertEqual(h.get(site("casino.test")).status, 403)  # the old policy
        m = h.metrics()
        self.assertEqual(m['haven_reloads_total{result="failed"}'], 1, m)
        status = html.unescape(h.local("/haven/status").text)
        self.assertIn("no-such-category", status)

    def test_sigterm_drains_in_flight_requests(self):
        h = self.start()
        ORIGIN.slow_started.clear()
        result = {}

        def slow():
            try:
                result["r"] = h.get(site(path="/slow?ms=2500"))
            except Exception as e:  # noqa: BLE001
                result["e"] = e
        t = threading.Thread(target=slow)
        t.start()
        self.assertTrue(ORIGIN.slow_started.wait(WAIT), "the slow request never started")
        h.signal(signal.SIGTERM)
        self.assertTrue(h.wait_stderr("stopping"), h.stderr())
        # New connections are soon no longer served (the workers hear of the signal just
        # after the main thread logs it), while the slow response is still on its way.
        refused = False
        while not refused and t.is_alive():
            late = None
            try:
                c = h.conn()
                try:
                    c.send(request_bytes("GET", site()))
                    late = c.read_response()
                finally:
                    c.close()
            except (EOFError, ConnectionError):
                pass  # refused, reset or closed: not served
            refused = late is None or late.status != 200
        self.assertTrue(refused, "requests after SIGTERM were still served")
        t.join(WAIT)
        self.assertNotIn("e", result, result)
        self.assertEqual(result["r"].status, 200)
        self.assertEqual(result["r"].body, b"slow done")
        self.assertEqual(h.wait_exit(), 0, h.stderr())


# ============================================================================ proxy sign-in

class TestSignIn(ProxyCase):
    """Groups named in `sign-in` must authenticate (407, Proxy-Authorization: Basic)."""

    def _setup(self):
        users = self.tmp / "var" / "users.sqlite"
        users.parent.mkdir(parents=True, exist_ok=True)
        p = run_haven(["users", "add", "bob", "--group", "staff", "--db", users,
                       "--password-stdin"], input="correct horse\n")
        self.assertEqual(p.returncode, 0, describe(p))
        return self.start("network 127.0.0.0/8 signin\nsign-in signin")

    @staticmethod
    def _basic(user, pw):
        return ("Proxy-Authorization",
                "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode())

    def test_challenge_407(self):
        h = self._setup()
        r = h.get(site())
        self.assertEqual(r.status, 407, r)
        self.assertIn('Basic realm="School internet"', r.header("Proxy-Authenticate", ""))

    def test_correct_password(self):
        h = self._setup()
        r = h.get(site(path="/echo?signed=1"), [self._basic("bob", "correct horse")])
        self.assertEqual(r.status, 200, r)
        info = json.loads(r.body)
        self.assertNotIn("proxy-authorization", [k.lower() for k, _ in info["headers"]],
                         "the credentials were passed on to the origin")
        rec = h.wait_log(lambda x: "signed=1" in x["url"])
        self.assertEqual((rec["user"], rec["group"]), ("bob", "staff"), rec)

    def test_request_arriving_during_password_check(self):
        # The password check runs off the event loop; the next pipelined request may arrive
        # meanwhile. Both must be answered, in order, and haven must keep running.
        h = self._setup()
        bad = self._basic("bob", "wrong")
        c = h.conn()
        try:
            c.send(request_bytes("GET", site(path="/echo?p=1"), headers=[bad]))
            time.sleep(0.01)
            c.send(request_bytes("GET", site(path="/echo?p=2"), headers=[bad]))
            first = c.read_response()
            self.assertEqual(first.status, 407, first)
            try:
                second = c.read_response()
            except (EOFError, ConnectionError):
                second = None
        finally:
            c.close()
        time.sleep(0.3)
        self.assertIsNone(h.proc.poll(),
                          "BUG: haven serve died when a request arrived during a password check "
                          "(proxy_auth_done -> proxy_challenge with c->x NULL):\n"
                          + h.stderr()[-3000:])
        self.assertIsNotNone(second, "the pipelined request got no answer")
        self.assertEqual(second.status, 407, second)

    def test_signed_in_users_group_decides(self):
        h = self._setup()
        good = self._basic("bob", "correct horse")
        self.assertEqual(h.get(site("casino.test"), [good]).status, 200)  # bob is staff
        self.assertEqual(h.get(site("casino.test"), [good]).status, 200)  # (from the cache)
        c, r = h.connect("echo.test:%d" % ECHO.port)
        c.close()
        self.assertEqual(r.status, 407, r)
        c, r = h.connect("echo.test:%d" % ECHO.port, [good])
        try:
            self.assertEqual(r.status, 200, r)
            c.send(b"hi")
            self.assertEqual(c._exact(2), b"hi")
        finally:
            c.close()

    def test_wrong_password(self):
        h = self._setup()
        r = h.get(site(), [self._basic("bob", "wrong")])
        self.assertEqual(r.status, 407, r)


if __name__ == "__main__":
    unittest.main()
