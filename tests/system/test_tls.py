"""HTTPS inspection in `haven serve` (issue 4), seen from the devices and by the network manager.

Each test starts its own `haven serve` with a school CA made by `haven ca init` (`ca-dir`), the
origin test CA as `upstream-ca`, and a policy whose pupils group has `inspect on`. The origins
are local HTTPS servers (tlsenv.TLSOrigin, serving proxyenv's routes) with certificates from an
origin test CA made with the openssl command: a good one for every name the tests use, and an
expired one, one for another site, a self-signed one and one from an authority nobody trusts.
Clients are curl, Python's ssl module through a CONNECT, and headless Chromium trusting the
school CA through an NSS database. Every wait is a hang guard, never a timing.
"""

import base64
import hashlib
import html
import http.client
import json
import os
import re
import shutil
import ssl
import subprocess
import tempfile
import unittest

import proxyenv
import tlsenv
from helpers import REPO, HavenTestCase, describe, haven_bin, notice, run_haven
from proxyenv import REF_RE, WAIT, Haven, StubDNS, compile_lists, pattern_bytes
from tlsenv import OriginPKI, TLSOrigin, cert_text, connect_tunnel, http_over, tunnel

SCHOOL = "Hillside Test Academy"
SCHOOL_ISSUER = "CN=%s haven inspection CA,O=%s" % (SCHOOL, SCHOOL)
ORIGIN_ISSUER = "CN=Haven Test Origin CA,O=Haven Tests"
CHROMIUM = "/usr/bin/chromium"
CERTUTIL = shutil.which("certutil")
CURL = shutil.which("curl")
ARTIFACTS = REPO / "build" / "artifacts"
SCREENSHOT = ARTIFACTS / "tls-block-page.png"
BROWSER_WAIT = 120  # a hang guard for one browser run

# Names on the good origin's certificate (the stub DNS answers 127.0.0.1 for all of them).
GOOD_NAMES = ["site.test", "casino.test", "games.test", "exempt.test", "bank.test", "cache.test",
              "resume.test",
              "nosni.test", "www.google.com", "www.youtube.com", "api.push.apple.com"]

LISTS = dict(proxyenv.LISTS, banking=["bank.test"])
ZONE = proxyenv.ZONE + ["api.push.apple.com A 127.0.0.1"]

POLICY = """\
school "%(school)s"
timezone Europe/London
default allow

list private-sites "Private test site: never decrypted" {
    exempt.test
}
no-inspect private-sites

group pupils {
    description "Pupils"
    inspect on
    no-sni %(no_sni)s
    block gambling
    warn games
    block site site.test/secret "Secret pages are for staff"
    default allow
    safe-search on
    youtube strict
    unsafe-search block
    block-ip-hosts off
    ports any
    connect-ports any
}

default-group pupils
"""

TMP = DB = DNS = SCHOOL_DIR = SCHOOL_CA = PKI = GOOD_CERT = None
GOOD = EXPIRED = WRONG_HOST = SELF_SIGNED = UNTRUSTED = None
_SKIP = None


def setUpModule():
    global TMP, DB, DNS, SCHOOL_DIR, SCHOOL_CA, PKI, GOOD_CERT, _SKIP
    global GOOD, EXPIRED, WRONG_HOST, SELF_SIGNED, UNTRUSTED
    if tlsenv.OPENSSL is None:
        _SKIP = "no openssl command: skipping the HTTPS inspection tests (apt-get install openssl)"
        notice(_SKIP)
        return
    if haven_bin() is None or run_haven(["ca", "--help"]).returncode != 0:
        _SKIP = "this haven has no `ca` command: skipping the HTTPS inspection tests"
        notice(_SKIP)
        return
    TMP = tempfile.mkdtemp(prefix="haven-tlstest-")
    DB = compile_lists(TMP, LISTS)
    DNS = StubDNS(ZONE, TMP)
    SCHOOL_DIR = os.path.join(TMP, "school-ca")
    p = run_haven(["ca", "init", "--dir", SCHOOL_DIR, "--name", SCHOOL])
    if p.returncode != 0:
        raise AssertionError("haven ca init failed: " + describe(p))
    SCHOOL_CA = os.path.join(SCHOOL_DIR, "ca.pem")
    PKI = OriginPKI(os.path.join(TMP, "origin-pki"))
    GOOD_CERT = PKI.issue("good", GOOD_NAMES)
    GOOD = TLSOrigin(*GOOD_CERT, name="good")
    EXPIRED = TLSOrigin(*PKI.issue("expired", ["expired.test"], expired=True), name="expired")
    WRONG_HOST = TLSOrigin(*PKI.issue("elsewhere", ["elsewhere.example"]), name="wrong-host")
    SELF_SIGNED = TLSOrigin(*PKI.self_signed("self", "selfsigned.test"), name="self-signed")
    stranger = OriginPKI(os.path.join(TMP, "stranger-pki"), name="Unknown Test CA")
    UNTRUSTED = TLSOrigin(*stranger.issue("untrusted", ["untrusted.test"]), name="untrusted")


def tearDownModule():
    for thing in (GOOD, EXPIRED, WRONG_HOST, SELF_SIGNED, UNTRUSTED, DNS):
        if thing:
            thing.stop()
    if TMP:
        shutil.rmtree(TMP, True)


def school_context():
    """A TLS client that trusts only the school CA (a school device)."""
    return ssl.create_default_context(cafile=SCHOOL_CA)


def origin_context(check_hostname=True):
    """A TLS client that trusts only the origin test CA (what the real site presents)."""
    ctx = ssl.create_default_context(cafile=str(PKI.cert))
    ctx.check_hostname = check_hostname
    return ctx


def issuer_of(tls):
    """The issuer of the certificate the peer presented, as RFC 2253 text."""
    text = cert_text(tls.getpeercert(binary_form=True), der=True)
    return re.search(r"^issuer=(.*)$", text, re.M).group(1)


def subject_of(tls):
    """The subject of the certificate the peer presented, as RFC 2253 text."""
    text = cert_text(tls.getpeercert(binary_form=True), der=True)
    return re.search(r"^subject=(.*)$", text, re.M).group(1)


class TLSCase(HavenTestCase):
    """Starts a fresh haven with inspection per test with start()."""

    def setUp(self):
        if _SKIP:
            self.skipTest(_SKIP)
        super().setUp()

    def start(self, no_sni="allow", extra=""):
        policy = POLICY % {"school": SCHOOL, "no_sni": no_sni}
        config = "ca-dir %s\nupstream-ca %s\n%s" % (SCHOOL_DIR, PKI.cert, extra)
        h = Haven(self.tmp, DB, policy=policy, resolver=DNS.port, extra=config, workers=1)
        self.addCleanup(h.kill)
        h.start()
        self.addCleanup(h.stop)  # runs first: SIGTERM, exit 0, no sanitizer report
        self.h = h
        return h

    def https(self, host, port):
        """An http.client connection to https://host:port through haven, trusting the school CA."""
        c = http.client.HTTPSConnection("127.0.0.1", self.h.port, timeout=WAIT,
                                        context=school_context())
        c.set_tunnel(host, port)
        self.addCleanup(c.close)
        return c

    def fetch(self, conn, path, headers=None):
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r, r.read()

    def curl(self, url, cacert=None, verbose=False):
        """curl through haven; (HTTP status, body text, stderr, exit status)."""
        if CURL is None:
            self.skipTest("no curl command (apt-get install curl)")
        argv = [CURL, "-sS", "--max-time", str(WAIT), "-x", "http://127.0.0.1:%d" % self.h.port,
                "--cacert", str(cacert or SCHOOL_CA), "-w", "\n%{http_code}", url]
        if verbose:
            argv.insert(1, "-v")
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        p = subprocess.run(argv, capture_output=True, timeout=WAIT * 2, env=env, text=True,
                           errors="replace")
        body, _, code = p.stdout.rpartition("\n")
        return int(code or 0), body, p.stderr, p.returncode

    def connect_record(self, host, port):
        """The access-log record of the CONNECT to host:port."""
        return self.h.wait_log(lambda r: r.get("method") == "CONNECT" and
                               "%s:%d" % (host, port) in r.get("url", ""),
                               "CONNECT %s:%d record" % (host, port))

    def ref_of(self, text):
        m = REF_RE.search(text)
        self.assertIsNotNone(m, "no reference HVN-XXXX-XXXX in the page: %r" % text[-2000:])
        return m.group(0)


# ============================================================================ inspected fetches

class TestInspectedFetch(TLSCase):

    def test_inspected_fetch(self):
        h = self.start()
        url = "https://site.test:%d/hello" % GOOD.port
        code, body, err, rc = self.curl(url, verbose=True)
        self.assertEqual((rc, code), (0, 200), err[-3000:])
        self.assertEqual(body, "hello from origin good")
        # curl saw a certificate from the school CA, for the site, naming the school.
        self.assertRegex(err, r"subject: O=%s; CN=site\.test" % SCHOOL, err[-3000:])
        self.assertIn("issuer: O=%s; CN=%s haven inspection CA" % (SCHOOL, SCHOOL), err)
        self.assertIn("SSL certificate verify ok", err)

        # The same through Python's ssl module: the leaf is for the site, under the school CA.
        with tunnel(h.port, "site.test", GOOD.port, school_context(), "site.test") as tls:
            self.assertEqual(issuer_of(tls), SCHOOL_ISSUER)
            self.assertEqual(subject_of(tls), "CN=site.test,O=%s" % SCHOOL)
            self.assertEqual(tls.getpeercert()["subjectAltName"], (("DNS", "site.test"),))
            status, _, body2 = http_over(tls, "site.test:%d" % GOOD.port, "/hello")
        self.assertEqual((status, body2), (200, b"hello from origin good"))

        # haven spoke TLS to the origin with the site's name, and asked for the path.
        self.assertIn("site.test", GOOD.snis)
        self.assertIn("GET /hello HTTP/1.1", GOOD.seen)
        rec = self.connect_record("site.test", GOOD.port)
        self.assertEqual(rec["reason"], "inspected", rec)
        self.assertEqual(rec["status"], 200, rec)
        rec = h.wait_log(lambda r: r.get("method") == "GET" and r.get("url") == url)
        self.assertEqual(rec["action"], "allow", rec)
        self.assertEqual(rec["status"], 200, rec)
        self.assertEqual(h.metrics().get("haven_tls_inspected_total"), 2)

    def test_device_without_school_ca_refuses(self):
        """A device that does not trust the school CA gets a certificate error, not the page."""
        self.start()
        code, body, err, rc = self.curl("https://site.test:%d/hello" % GOOD.port,
                                        cacert=PKI.cert)
        self.assertEqual(rc, 60, "curl should refuse the school's leaf: exit %d %s" % (rc, err))
        self.assertNotIn("hello from origin", body)

    def test_url_block_and_keepalive(self):
        h = self.start()
        c = self.https("site.test", GOOD.port)
        r, body = self.fetch(c, "/secret/plans.html")
        text = body.decode("utf-8", "replace")
        self.assertEqual(r.status, 403, text[-2000:])
        self.assertIn("text/html", r.getheader("Content-Type", ""))
        self.assertIn("This page is blocked", text)
        self.assertIn("Secret pages are for staff", html.unescape(text))
        ref = self.ref_of(text)
        first = c.sock
        self.assertIsNotNone(first, "haven closed the inspected connection after the block page")
        # The next request on the same TLS connection is allowed and reaches the origin.
        r, body = self.fetch(c, "/hello")
        self.assertEqual((r.status, body), (200, b"hello from origin good"))
        self.assertIs(c.sock, first, "the second request went over a new connection")
        rec = h.wait_ref(ref)
        self.assertEqual(rec["url"], "https://site.test:%d/secret/plans.html" % GOOD.port, rec)
        self.assertEqual(rec["action"], "block", rec)
        self.assertEqual(rec["status"], 403, rec)
        self.assertNotIn("GET /secret/plans.html HTTP/1.1", GOOD.seen)
        rec = h.wait_log(lambda x: x.get("url") == "https://site.test:%d/hello" % GOOD.port)
        self.assertEqual(rec["status"], 200, rec)
        # One CONNECT, inspected once.
        self.assertEqual(h.metrics().get("haven_tls_inspected_total"), 1)

    def test_category_block_page(self):
        h = self.start()
        url = "https://casino.test:%d/roulette" % GOOD.port
        code, body, err, rc = self.curl(url)
        self.assertEqual((rc, code), (0, 403), err[-3000:])
        self.assertIn("This page is blocked", body)
        self.assertIn("Gambling", body)
        self.assertIn(SCHOOL, body)
        ref = self.ref_of(body)
        rec = h.wait_ref(ref)
        self.assertEqual(rec["url"], url, rec)
        self.assertEqual(rec["action"], "block", rec)
        self.assertIn("gambling", rec["categories"], rec)
        self.assertNotIn("GET /roulette HTTP/1.1", GOOD.seen)

    def test_warn_page_then_continue(self):
        h = self.start()
        c = self.https("games.test", GOOD.port)
        r, body = self.fetch(c, "/hello")
        text = body.decode("utf-8", "replace")
        self.assertEqual(r.status, 403, text[-2000:])
        self.assertIn("Games", html.unescape(text))
        m = re.search(r'href="(/\.well-known/haven/continue\?ref=(HVN-[0-9A-Z-]+))"', text)
        self.assertIsNotNone(m, "no continue link on the warn page: %r" % text[-3000:])
        rec = h.wait_ref(m.group(2))
        self.assertEqual(rec["action"], "warn", rec)
        r, _ = self.fetch(c, html.unescape(m.group(1)))
        self.assertEqual(r.status, 302)
        self.assertEqual(r.getheader("Location"), "https://games.test:%d/hello" % GOOD.port)
        r, body = self.fetch(c, "/hello")
        self.assertEqual((r.status, body), (200, b"hello from origin good"))


    def test_blocked_site_connect_is_logged_as_inspected(self):
        # The CONNECT is logged as "inspect"; only the page inside counts as a block.
        h = self.start()
        url = "https://casino.test:%d/roulette" % GOOD.port
        code, body, err, rc = self.curl(url)
        self.assertEqual((rc, code), (0, 403), err[-3000:])
        ref = self.ref_of(body)
        h.wait_ref(ref)
        rec = self.connect_record("casino.test", GOOD.port)
        self.assertEqual((rec["status"], rec["action"]), (200, "inspect"), rec)
        blocks = [r for r in h.log_records() if r.get("action") == "block"]
        self.assertEqual([r["url"] for r in blocks], [url],
                         "one blocked HTTPS page, %d block records" % len(blocks))
        self.assertEqual(rec["reason"], "inspected", rec)
        m = h.metrics()
        self.assertEqual(m.get('haven_verdicts_total{action="block",category="gambling"}'), 1, m)


# ============================================================================ bodies inside TLS

class TestTransfers(TLSCase):

    def test_large_bodies_both_ways(self):
        h = self.start()
        c = self.https("site.test", GOOD.port)
        # The first request opens the TLS connection to the origin.
        r, body = self.fetch(c, "/hello")
        self.assertEqual(r.status, 200)
        for path, n in (("/big?n=3000000", 3000000), ("/chunked?n=200000", 200000)):
            r, body = self.fetch(c, path)
            self.assertEqual(r.status, 200, path)
            self.assertEqual(len(body), n, path)
            self.assertTrue(body == pattern_bytes(n), "%s: the body was changed" % path)
        # An upload on the established connection arrives whole.
        data = pattern_bytes(2000000, b"upload")
        c.request("POST", "/upload", body=data,
                  headers={"Content-Type": "application/octet-stream"})
        r = c.getresponse()
        info = json.loads(r.read())
        self.assertEqual(r.status, 200)
        self.assertEqual(info["body_len"], len(data))
        self.assertEqual(info["body_sha256"], hashlib.sha256(data).hexdigest())
        # A response delimited by the origin closing ends the client's connection too.
        r, body = self.fetch(c, "/close?n=300000")
        self.assertEqual(r.status, 200)
        self.assertTrue(body == pattern_bytes(300000), "the close-delimited body was changed")
        rec = h.wait_log(lambda x: x.get("method") == "POST")
        self.assertEqual(rec["url"], "https://site.test:%d/upload" % GOOD.port, rec)
        self.assertEqual(rec["status"], 200, rec)

    def test_upload_during_origin_handshake(self):
        # Body bytes that arrive while haven's TLS to the origin is still being set up wait.
        h = self.start()
        slow = TLSOrigin(*GOOD_CERT, name="held", gated=True)
        self.addCleanup(slow.stop)
        data = pattern_bytes(20000, b"upload")
        host = "site.test:%d" % slow.port
        with tunnel(h.port, "site.test", slow.port, school_context(), "site.test") as tls:
            tls.sendall(("POST /upload HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n"
                         "Connection: close\r\n\r\n" % (host, len(data))).encode() + data[:5000])
            # haven has connected to the origin and sent its hello; the origin holds it.
            self.assertTrue(slow.hello_waiting.wait(WAIT), "haven did not connect to the origin")
            tls.sendall(data[5000:])
            # haven has read the rest of the body (it handles what it reads before it can see
            # the origin's answer); only now may the handshake go on.
            self.assertTrue(tlsenv.wait_read_by_peer(tls), "haven did not read the body")
            slow.handshake_gate.set()
            status, head, body = http_over(tls, host, None)
        rec = h.wait_log(lambda x: x.get("method") == "POST")
        self.assertEqual(status, 200, "no answer to an upload made while haven's TLS "
                         "handshake with the origin was under way; logged: %r" % rec)
        info = json.loads(body)
        self.assertEqual(info["body_len"], len(data))
        self.assertEqual(info["body_sha256"], hashlib.sha256(data).hexdigest())


# ============================================================================ never decrypted

class TestNotInspected(TLSCase):

    def test_exempt_hosts_are_tunnelled(self):
        """no-inspect lists, no-inspect categories (banking) and pinned services: the device
        sees the site's own certificate and talks to the site end to end."""
        h = self.start()
        for host in ("exempt.test", "bank.test", "api.push.apple.com"):
            with self.subTest(host=host):
                n = len(GOOD.seen)
                with tunnel(h.port, host, GOOD.port, origin_context(), host) as tls:
                    self.assertEqual(issuer_of(tls), ORIGIN_ISSUER)
                    self.assertIn(("DNS", host), tls.getpeercert()["subjectAltName"])
                    status, _, body = http_over(tls, "%s:%d" % (host, GOOD.port), "/hello")
                self.assertEqual((status, body), (200, b"hello from origin good"))
                self.assertEqual(GOOD.seen[n:], ["GET /hello HTTP/1.1"])
                rec = self.connect_record(host, GOOD.port)
                self.assertNotEqual(rec["reason"], "inspected", rec)
                self.assertTrue(rec["tunnel"], rec)
                self.assertFalse(any(r.get("url", "").startswith("https://%s:" % host) and
                                     r.get("method") == "GET" for r in h.log_records()))
        self.assertEqual(h.metrics().get("haven_tls_inspected_total", 0), 0)

    def test_no_sni_is_tunnelled(self):
        h = self.start()
        n = len(GOOD.snis)
        # No server name, so no hostname check: the certificate is checked against the
        # origin CA, which only the real origin's certificate passes.
        with tunnel(h.port, "nosni.test", GOOD.port, origin_context(False), None) as tls:
            self.assertEqual(issuer_of(tls), ORIGIN_ISSUER)
            status, _, body = http_over(tls, "nosni.test:%d" % GOOD.port, "/hello")
        self.assertEqual((status, body), (200, b"hello from origin good"))
        self.assertEqual(GOOD.snis[n:], [None])
        rec = self.connect_record("nosni.test", GOOD.port)
        self.assertNotEqual(rec["reason"], "inspected", rec)
        self.assertEqual(rec["action"], "allow", rec)
        self.assertEqual(h.metrics().get("haven_tls_inspected_total", 0), 0)

    def test_no_sni_block(self):
        h = self.start(no_sni="block")
        n = len(GOOD.snis)
        sock, status, head = connect_tunnel(h.port, "nosni.test", GOOD.port)
        self.addCleanup(sock.close)
        self.assertEqual(status, 200, head)
        ctx = origin_context(False)
        with self.assertRaises((ssl.SSLError, OSError)):
            ctx.wrap_socket(sock, server_hostname=None)
        self.assertEqual(GOOD.snis[n:], [], "the hello reached the origin")
        rec = self.connect_record("nosni.test", GOOD.port)
        self.assertEqual(rec["action"], "block", rec)
        self.assertIn("names no site", rec["reason"], rec)
        self.assertTrue(rec["circumvention"], rec)
        # A hello with a name is still inspected in that group.
        code, body, err, rc = self.curl("https://site.test:%d/hello" % GOOD.port)
        self.assertEqual((rc, code, body), (0, 200, "hello from origin good"), err[-2000:])


# ============================================================================ origin certificates

class TestOriginCertificates(TLSCase):

    def test_bad_origin_certificates(self):
        h = self.start()
        cases = [("expired.test", EXPIRED, "expired"),
                 ("wronghost.test", WRONG_HOST, "different site"),
                 ("selfsigned.test", SELF_SIGNED, "self-signed"),
                 ("untrusted.test", UNTRUSTED, "not from an authority")]
        for host, origin, words in cases:
            with self.subTest(host=host):
                url = "https://%s:%d/hello" % (host, origin.port)
                code, body, err, rc = self.curl(url)
                self.assertEqual((rc, code), (0, 502), err[-2000:])
                self.assertIn(words, html.unescape(body))
                self.assertEqual(origin.seen, [], "the request reached a site haven refused")
                rec = h.wait_log(lambda r, url=url: r.get("url") == url)
                self.assertEqual(rec["status"], 502, rec)
                self.assertTrue(h.wait_stderr("TLS to %s failed" % host), h.stderr()[-3000:])
        m = h.metrics()
        self.assertEqual(m.get('haven_upstream_errors_total{kind="certificate"}'), len(cases), m)

    def test_good_certificate_is_still_checked_per_site(self):
        """The certificate problem of one site does not leak to another on the same haven."""
        self.start()
        code, body, _, _ = self.curl("https://expired.test:%d/hello" % EXPIRED.port)
        self.assertEqual(code, 502)
        code, body, err, rc = self.curl("https://site.test:%d/hello" % GOOD.port)
        self.assertEqual((rc, code, body), (0, 200, "hello from origin good"), err[-2000:])


# ============================================================================ rewriting inside TLS

class TestSafeSearchInside(TLSCase):

    def test_safe_search_and_youtube_restrict(self):
        h = self.start()
        c = self.https("www.google.com", GOOD.port)
        r, body = self.fetch(c, "/search?q=kittens")
        self.assertEqual(r.status, 200, body[-2000:])
        info = json.loads(body)
        self.assertRegex(info["request_line"], r"^GET /search\?\S*q=kittens", info)
        self.assertRegex(info["request_line"], r"[?&]safe=active(&| )", info)
        self.assertIn("www.google.com", GOOD.snis)
        rec = h.wait_log(lambda x: x.get("method") == "GET" and
                         x.get("url", "").startswith("https://www.google.com:%d/search"
                                                     % GOOD.port))
        self.assertEqual(rec["status"], 200, rec)
        self.assertEqual(rec["safe_search"], "google", rec)
        if "search" in rec:  # the search terms, for the monitoring rules (docs/logging.md)
            self.assertEqual(rec["search"], "kittens", rec)

        c = self.https("www.youtube.com", GOOD.port)
        r, body = self.fetch(c, "/watch?v=abc")
        self.assertEqual(r.status, 200, body[-2000:])
        headers = {k.lower(): v for k, v in json.loads(body)["headers"]}
        self.assertEqual(headers.get("youtube-restrict"), "Strict", headers)


    def test_inspected_search_and_page_are_monitored(self):
        """Inside inspected HTTPS the monitor reads searches and pages as in plain HTTP."""
        from sinks import WebhookSink
        with WebhookSink() as hook:
            h = self.start(extra="alert-webhook %s\nalert-syslog off\n" % hook.url)
            c = self.https("www.google.com", GOOD.port)
            r, body = self.fetch(c, "/search?q=how+do+i+hide+my+scars")
            self.assertEqual(r.status, 200, body[-2000:])
            j = hook.wait_for(1, timeout=WAIT)[0].json
            self.assertEqual(j["theme"], "self-harm")
            self.assertEqual(j["source"], "search")
            self.assertTrue(j["url"].startswith("https://www.google.com:"), j)
            # The origin's JSON answer echoes the request line: the page holds the words too,
            # and the record names the search, the stronger evidence (one alert per request).
            self.assertEqual(len(hook.items), 1)


# ============================================================================ leaf cache

class TestLeafCache(TLSCase):

    def test_second_connection_hits_the_cache(self):
        h = self.start()
        leaves = []
        for _ in range(2):
            with tunnel(h.port, "cache.test", GOOD.port, school_context(), "cache.test") as tls:
                leaves.append(tls.getpeercert(binary_form=True))
                status, _, body = http_over(tls, "cache.test:%d" % GOOD.port, "/hello")
                self.assertEqual((status, body), (200, b"hello from origin good"))
            if len(leaves) == 1:
                m = h.metrics()
                self.assertEqual(m.get("haven_tls_leaf_cache_misses_total"), 1, m)
                self.assertEqual(m.get("haven_tls_leaf_cache_hits_total"), 0, m)
        m = h.metrics()
        self.assertEqual(m.get("haven_tls_leaf_cache_misses_total"), 1, m)
        self.assertGreaterEqual(m.get("haven_tls_leaf_cache_hits_total", 0), 1, m)
        self.assertEqual(leaves[0], leaves[1], "the cached leaf was not the one served")
        self.assertEqual(m.get("haven_tls_inspected_total"), 2, m)

    def test_second_connection_resumes_the_origin_session(self):
        # haven keeps its TLS session with the site: the next connection resumes it.
        h = self.start()
        before = len(GOOD.resumed)
        for _ in range(2):
            with tunnel(h.port, "resume.test", GOOD.port, school_context(), "resume.test") as tls:
                status, _, body = http_over(tls, "resume.test:%d" % GOOD.port, "/hello")
                self.assertEqual((status, body), (200, b"hello from origin good"))
        self.assertEqual(GOOD.resumed[before:], [False, True])


class TestWithoutCA(HavenTestCase):

    def test_inspect_on_without_a_ca_is_refused_with_the_fix(self):
        (self.tmp / "policy.conf").write_text(POLICY % {"school": SCHOOL, "no_sni": "allow"})
        (self.tmp / "haven.conf").write_text(
            "listen 127.0.0.1:%d\npolicy policy.conf\ndatabase %s\ndata-dir var\n"
            % (proxyenv.free_port(), DB))
        for extra in (["--check-config"], []):
            p = run_haven(["serve", "--config", self.tmp / "haven.conf"] + extra, timeout=60)
            self.assertEqual(p.returncode, 1, describe(p))
            self.assertIn("has `inspect on`, but there is no inspection CA in", p.stderr)
            self.assertIn("haven ca init --dir", p.stderr)


# ============================================================================ the CA key

class TestCaKeyOnlyInSigner(TLSCase):

    def key_needles(self):
        """Byte strings that only a copy of the CA key would contain."""
        text = tlsenv.openssl("pkey", "-in", os.path.join(SCHOOL_DIR, "ca.key"), "-text",
                              "-noout").decode()
        m = re.search(r"priv:\s*\n((?:\s+[0-9a-f:]+\n)+)", text)
        self.assertIsNotNone(m, text)
        scalar = bytes.fromhex(re.sub(r"[\s:]", "", m.group(1)))
        scalar = scalar[-32:].rjust(32, b"\0")  # openssl may print a leading 00
        with open(os.path.join(SCHOOL_DIR, "ca.key")) as f:
            pem = f.read().splitlines()
        body = "".join(l for l in pem if not l.startswith("-----"))
        der = base64.b64decode(body)
        # The scalar big-endian (DER, files) and little-endian (OpenSSL's BIGNUM words).
        return {"private scalar": scalar, "private scalar, little-endian": scalar[::-1],
                "PKCS#8 DER": der, "PEM base64 line": pem[1].encode()}

    def test_ca_key_not_in_proxy_memory(self):
        needles = self.key_needles()
        scalar = needles["private scalar"]

        # The scanner works: it finds the scalar in another process that holds it.
        holder = subprocess.Popen(
            [proxyenv.PYTHON, "-c", "import sys; k = bytes.fromhex(sys.stdin.readline()); "
             "k2 = k[::-1]; print('ready', flush=True); sys.stdin.read()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.addCleanup(holder.wait, WAIT)
        self.addCleanup(holder.stdout.close)
        self.addCleanup(holder.stdin.close)
        holder.stdin.write(scalar.hex() + "\n")
        holder.stdin.flush()
        self.assertEqual(holder.stdout.readline().strip(), "ready")
        try:
            found, _, _ = tlsenv.scan_memory(holder.pid, list(needles.values()))
        except OSError as e:
            msg = "cannot read /proc/PID/mem (%s): skipping the CA key memory test" % e
            notice(msg)
            self.skipTest(msg)
        self.assertIn(scalar, found, "the memory scanner misses a key held by a process")
        self.assertIn(scalar[::-1], found, "the memory scanner misses a key held by a process")

        h = self.start()
        # Inspect something first: a leaf has been minted and TLS spoken both ways.
        code, body, err, rc = self.curl("https://site.test:%d/hello" % GOOD.port)
        self.assertEqual((rc, code), (0, 200), err[-2000:])
        pid = h.proc.pid
        fds = []
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                fds.append(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
            except OSError:
                pass
        self.assertFalse([f for f in fds if f.endswith("ca.key")], fds)
        found, scanned, skipped = tlsenv.scan_memory(pid, list(needles.values()))
        self.assertGreater(scanned, 1 << 20)
        leaked = [what for what, needle in needles.items() if needle in found]
        self.assertEqual(leaked, [], "the CA key is in the memory of haven serve (pid %d): %s"
                         % (pid, {w: found[needles[w]] for w in leaked}))

        # The signer does hold it (when this user may read a non-dumpable process's memory).
        m = re.search(r"certificate signer pid (\d+)", h.stderr())
        self.assertIsNotNone(m, h.stderr()[-2000:])
        signer = int(m.group(1))
        self.assertNotEqual(signer, pid)
        try:
            found, _, _ = tlsenv.scan_memory(signer, [scalar, scalar[::-1]])
        except OSError:
            notice("the signer's memory cannot be read (non-dumpable): not cross-checked")
            return
        self.assertTrue(found, "the scanner found the CA key in neither haven serve nor the "
                        "signer (pid %d): the scan proves nothing" % signer)


# ============================================================================ a real browser

class TestChromium(TLSCase):

    def setUp(self):
        super().setUp()
        if not os.access(CHROMIUM, os.X_OK) or CERTUTIL is None:
            msg = ("chromium or certutil not found: skipping the HTTPS inspection browser test "
                   "(apt-get install -y chromium libnss3-tools)")
            notice(msg)
            self.skipTest(msg)
        self.home = self.tmp / "home"
        nssdb = self.home / ".pki" / "nssdb"
        nssdb.mkdir(parents=True)
        for args in (["-N", "--empty-password"],
                     ["-A", "-t", "C,,", "-n", "%s haven inspection CA" % SCHOOL, "-i",
                      SCHOOL_CA]):
            subprocess.run([CERTUTIL, "-d", "sql:%s" % nssdb] + args, check=True,
                           capture_output=True, timeout=60)

    def chromium(self, *args):
        profile = tempfile.mkdtemp(prefix="haven-chromium-", dir=self.tmp)
        env = dict(os.environ, HOME=str(self.home))
        argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--user-data-dir=" + profile,
                "--window-size=1024,900", "--proxy-server=http://127.0.0.1:%d" % self.h.port]
        return subprocess.run(argv + list(args), capture_output=True, text=True, errors="replace",
                              env=env, cwd=self.tmp, timeout=BROWSER_WAIT)

    def test_inspected_page_and_block_page(self):
        from test_browser import png_size
        h = self.start()
        url = "https://site.test:%d/hello" % GOOD.port
        p = self.chromium("--dump-dom", url)
        self.assertIn("hello from origin good", p.stdout, p.stderr[-3000:])
        rec = h.wait_log(lambda r: r.get("url") == url)
        self.assertEqual(rec["status"], 200, rec)

        blocked = "https://casino.test:%d/roulette" % GOOD.port
        p = self.chromium("--dump-dom", blocked)
        self.assertIn("This page is blocked", p.stdout, p.stderr[-3000:])
        self.assertIn("Gambling", p.stdout)
        self.assertRegex(p.stdout, REF_RE)

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        if SCREENSHOT.exists():
            SCREENSHOT.unlink()
        p = self.chromium("--screenshot=%s" % SCREENSHOT, blocked)
        self.assertTrue(SCREENSHOT.exists(), "no screenshot; chromium exit %s:\n%s"
                        % (p.returncode, p.stderr[-3000:]))
        self.assertEqual(png_size(SCREENSHOT), (1024, 900))
        self.assertGreater(SCREENSHOT.stat().st_size, 20000, "a blank screenshot")
        rec = h.wait_log(lambda r: r.get("url") == blocked)
        self.assertEqual(rec["action"], "block", rec)


if __name__ == "__main__":
    unittest.main()
