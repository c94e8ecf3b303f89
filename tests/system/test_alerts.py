"""The safeguarding monitor end to end: a pupil's search or page through the proxy, the
records it leaves, and the alert the DSL receives by e-mail and webhook (docs/alerts.md).

A local SMTP sink and webhook receiver (sinks.py) stand in for the school's mail relay and
a local authority's service; the pupil is tied to 127.0.0.1 with an IP session, so every
alert names them. Delivery time is printed, not asserted (issue 5 asks for 2 seconds; the
hang guard here is generous).
"""

import gzip
import json
import os
import shutil
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote_plus, urlsplit

import proxyenv
from helpers import HavenTestCase, describe, notice, run_haven
from proxyenv import POLICY, WAIT, Haven, StubDNS, compile_lists
from sinks import SmtpSink, WebhookSink

DB = None
DNS = None
ORIGIN = None
_TMP = None

DSL = "dsl@school.example"
DEPUTY = "deputy@school.example"


class PageHandler(BaseHTTPRequestHandler):
    """/page?text=T[&gz=1][&chunked=1]: an HTML page holding T in a paragraph (and a script
    that must not count); anything else: a small JSON answer."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        u = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(u.query).items()}
        if u.path == "/page":
            html = ("<html><head><title>Forum</title><script>var x = 'nothing here';</script>"
                    "</head><body><h1>My thread</h1><p>%s</p></body></html>" % q.get("text", ""))
            body = html.encode()
            headers = [("Content-Type", "text/html; charset=utf-8")]
            if q.get("gz"):
                body = gzip.compress(body)
                headers.append(("Content-Encoding", "gzip"))
        else:
            body = json.dumps({"results": []}).encode()
            headers = [("Content-Type", "application/json")]
        self.send_response(200)
        for k, v in headers:
            self.send_header(k, v)
        if q.get("chunked"):
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(body), 7):
                part = body[i:i + 7]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)


def setUpModule():
    global DB, DNS, ORIGIN, _TMP
    _TMP = tempfile.mkdtemp(prefix="haven-alerttest-")
    DB = compile_lists(_TMP)
    DNS = StubDNS(proxyenv.ZONE, _TMP)
    ORIGIN = ThreadingHTTPServer(("127.0.0.1", 0), PageHandler)
    threading.Thread(target=ORIGIN.serve_forever, daemon=True).start()


def tearDownModule():
    if ORIGIN:
        ORIGIN.shutdown()
    if DNS:
        DNS.stop()
    if _TMP:
        shutil.rmtree(_TMP, True)


def search_url(terms):
    return "http://www.google.com:%d/search?q=%s" % (ORIGIN.server_port, quote_plus(terms))


def page_url(text, **kw):
    extra = "".join("&%s=1" % k for k in kw)
    return "http://forum.test:%d/page?text=%s%s" % (ORIGIN.server_port, quote_plus(text), extra)


class AlertCase(HavenTestCase):
    def setUp(self):
        super().setUp()
        self.smtp = SmtpSink()
        self.smtp.__enter__()
        self.addCleanup(self.smtp.__exit__, None, None, None)
        self.hook = WebhookSink()
        self.hook.__enter__()
        self.addCleanup(self.hook.__exit__, None, None, None)

    def start(self, policy=POLICY, extra=""):
        conf = ("alert-email-to %s\nalert-urgent-to %s\nalert-email-from haven@school.example\n"
                "alert-smtp %s\nalert-webhook %s\nalert-syslog off\n%s"
                % (DSL, DEPUTY, self.smtp.url, self.hook.url, extra))
        h = Haven(self.tmp, DB, policy, DNS.port, conf)
        self.db = str(h.data / "users.sqlite")
        for args in (["users", "add", "amira.k", "--group", "pupils", "--name", "Amira K"],
                     ["session", "add", "amira.k", "127.0.0.1", "--ttl", "1h"]):
            p = run_haven(args + ["--db", self.db])
            self.assertEqual(p.returncode, 0, describe(p))
        self.addCleanup(h.kill)
        h.start()
        self.addCleanup(h.stop)
        self.h = h
        return h

    def haven(self, *args):
        p = run_haven(list(args) + ["--db", self.db])
        self.assertEqual(p.returncode, 0, describe(p))
        return p.stdout

    def alerts(self):
        return [json.loads(l) for l in self.haven("alerts", "list", "--json").splitlines()]

    def wait_events(self, n, kind=None):
        """The user's events once at least n (of kind) are in the store."""
        deadline = time.monotonic() + WAIT
        while True:
            out = self.haven("activity", "amira.k", "--json")
            evs = [json.loads(l) for l in out.splitlines() if l.strip()]
            evs = [e for e in evs if e.get("kind") and (kind is None or e["kind"] == kind)]
            if len(evs) >= n or time.monotonic() > deadline:
                return evs
            time.sleep(0.1)


class TestSearchAlerts(AlertCase):
    def test_self_harm_search_alerts_the_dsl_by_email_and_webhook(self):
        h = self.start()
        t0 = time.monotonic()
        r = h.get(search_url("how do i hide my scars from my mum"))
        self.assertEqual(r.status, 200, r)
        mail = self.smtp.wait_for(1, timeout=WAIT)[0]
        t_mail = time.monotonic() - t0
        hook = self.hook.wait_for(1, timeout=WAIT)[0]
        t_hook = time.monotonic() - t0
        notice("alert delivered %.2f s (e-mail) and %.2f s (webhook) after the search"
               % (t_mail, t_hook))
        # The e-mail: to the DSL, names the pupil, the theme, the words and where.
        self.assertEqual(mail.rcpt_to, [DSL])
        msg = mail.message()
        self.assertIn("self-harm", msg["Subject"])
        self.assertIn("amira.k", msg["Subject"])
        body = mail.text()
        for want in ("amira.k", "Amira K", "pupils", "127.0.0.1", "self-harm",
                     "how do i hide my scars from my mum", "www.google.com", "search",
                     "haven activity amira.k", "haven alerts resolve"):
            self.assertIn(want, body)
        # The webhook: the same alert as JSON.
        j = hook.json
        self.assertEqual(hook.method, "POST")
        self.assertEqual(j["username"], "amira.k")
        self.assertEqual(j["theme"], "self-harm")
        self.assertEqual(j["area"], "content")
        self.assertGreaterEqual(j["severity"], 4)
        self.assertEqual(j["source"], "search")
        self.assertIn("hide my scars", j["excerpt"])
        # The record: the alert with its deliveries sent, and the search event.
        a = self.alerts()
        self.assertEqual(len(a), 1, a)
        self.assertEqual(a[0]["theme"], "self-harm")
        self.assertEqual(a[0]["status"], "open")
        show = json.loads(self.haven("alerts", "show", str(a[0]["id"]), "--json"))
        self.assertEqual(sorted(d["channel"] for d in show["deliveries"]), ["email", "webhook"])
        deadline = time.monotonic() + WAIT
        while any(d["status"] != "sent" for d in show["deliveries"]):
            self.assertLess(time.monotonic(), deadline, show)
            time.sleep(0.1)
            show = json.loads(self.haven("alerts", "show", str(a[0]["id"]), "--json"))
        ev = self.wait_events(1, "match")
        self.assertEqual(ev[0]["theme"], "self-harm")
        self.assertEqual(ev[0]["search"], "how do i hide my scars from my mum")
        m = h.metrics()
        self.assertEqual(m['haven_alerts_total{suppressed="no"}'], 1)
        self.assertEqual(m['haven_alert_deliveries_total{result="sent"}'], 2)
        self.assertGreaterEqual(m['haven_records_total{kind="event"}'], 1)
        # The DSL records the outcome.
        self.haven("alerts", "resolve", str(a[0]["id"]), "--outcome", "spoke to Amira; parents told")
        self.assertEqual(self.alerts()[0]["status"], "resolved")

    def test_benign_near_miss_raises_nothing(self):
        h = self.start()
        for q in ("how to cut a mango", "this homework is killing me",
                  "causes of the rise of extremism in the 1930s essay"):
            self.assertEqual(h.get(search_url(q)).status, 200)
        evs = self.wait_events(3)
        self.assertEqual(len(evs), 3, evs)
        # Kept as searches (or a weak match, for the digest), none with an alert's severity.
        self.assertTrue(all(e["severity"] < 3 for e in evs), evs)
        # Give the pipeline time to have sent anything it would.
        time.sleep(2)
        self.assertEqual(self.alerts(), [])
        self.assertEqual(self.smtp.items, [])
        self.assertEqual(self.hook.items, [])

    def test_severity_five_goes_to_deputies_and_repeats_are_not_resent(self):
        h = self.start()
        h.get(search_url("how to kill myself tonight"))
        mail = self.smtp.wait_for(1, timeout=WAIT)[0]
        self.assertEqual(sorted(mail.rcpt_to), sorted([DSL, DEPUTY]))
        self.assertTrue(mail.message()["Subject"].startswith("URGENT"), mail.message()["Subject"])
        h.get(search_url("how to kill myself tonight"))
        deadline = time.monotonic() + WAIT
        while len(self.alerts()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        a = self.alerts()
        self.assertEqual(len(a), 2, a)
        self.assertEqual(sum(1 for x in a if x["suppressed"]), 1, a)
        time.sleep(1)
        self.assertEqual(len(self.smtp.items), 1)

    def test_contextual_block_of_a_search(self):
        policy = POLICY.replace('    description "Pupils"\n',
                                '    description "Pupils"\n    block-score 10\n')
        h = self.start(policy)
        r = h.get(search_url("how to kill myself"))
        self.assertEqual(r.status, 403, r)
        self.assertIn("Childline", r.text)
        self.assertIn("0800 1111", r.text)
        rec = h.wait_log(lambda x: "/search?" in x["url"])
        self.assertEqual(rec["action"], "block", rec)
        self.assertEqual(rec["tier"], "contextual", rec)
        # Still an alert: a blocked search is no less a concern.
        self.smtp.wait_for(1, timeout=WAIT)
        ev = self.wait_events(1, "block")
        self.assertEqual(ev[0]["theme"], "suicide")
        # A benign search under the same group goes through.
        self.assertEqual(h.get(search_url("kill time before the bus")).status, 200)


class TestPageAlerts(AlertCase):
    def test_page_text_alerts_plain_gzip_and_chunked(self):
        h = self.start()
        text = "honestly i am going to end my life this weekend nobody would care"
        for kw in ({}, {"gz": 1}, {"gz": 1, "chunked": 1}):
            r = h.get(page_url(text, **kw))
            self.assertEqual(r.status, 200, r)
        hooks = self.hook.wait_for(1, timeout=WAIT)
        j = hooks[0].json
        self.assertEqual(j["source"], "page")
        self.assertEqual(j["theme"], "suicide")
        self.assertIn("end my life", j["excerpt"])
        self.assertIn("forum.test", j["url"])
        evs = self.wait_events(3, "match")
        self.assertEqual(len(evs), 3, evs)  # each page read, whatever its coding and framing

    def test_monitor_off_for_a_group(self):
        policy = POLICY.replace('    description "Pupils"\n',
                                '    description "Pupils"\n    monitor off\n')
        h = self.start(policy)
        h.get(page_url("i am going to end my life"))
        h.get(search_url("i want to cut myself"))
        evs = self.wait_events(1, "search")
        self.assertEqual(len(evs), 1, evs)  # the search is kept, as in the access log ...
        self.assertIsNone(evs[0]["theme"])  # ... but not read by the monitor
        time.sleep(1)
        self.assertEqual(self.alerts(), [])
        self.assertEqual(self.wait_events(1, "match"), [])


if __name__ == "__main__":
    unittest.main()
