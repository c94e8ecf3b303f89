"""`haven alerts`, `activity`, `report`, `purge` and `sar`: the safeguarding records.

The CLI cannot add events or alerts (the daemon's writer thread does), so each test creates
and migrates a database with `haven users add`, then seeds records with Python's sqlite3
module, writing rows exactly as the store's schema (migration 2, src/store/sqlite.c) defines
them: see seed(). Times are fixed instants in UTC and haven runs with TZ=UTC, so tables print
predictable local times.
"""

import json
import os
import sqlite3
import time
import unittest

from helpers import HavenTestCase, describe, haven_bin, haven_env, notice, run_haven, write

# 2026-11-30T10:00:00Z, a Monday in term.
T0_MS = 1796032800000
HOUR_MS = 3600000
DAY_MS = 24 * HOUR_MS

_supported = None


def records_supported():
    global _supported
    if _supported is None:
        p = run_haven(["alerts", "--help"]) if haven_bin() else None
        _supported = p is not None and p.returncode == 0
        if not _supported:
            notice("this haven has no `alerts` command yet: skipping tests/system/test_records.py")
    return _supported


def seed(db, events=(), rollups=(), alerts=(), deliveries=()):
    """Write records into the store's tables as the daemon would.

    events:     dicts with time_ms, kind and any of the other columns of `events`;
    rollups:    (hour_s, username, group, host, category, requests, bytes);
    alerts:     dicts with time_ms, username, theme, severity and any other column of `alerts`;
    deliveries: (alert_id, channel, target, status, attempts, last_error, next_ms, updated_ms).
    Returns the ids of the alerts, in order."""
    ids = []
    with sqlite3.connect(str(db)) as c:
        for e in events:
            cols = sorted(e)
            c.execute("INSERT INTO events (%s) VALUES (%s)" % (", ".join(cols),
                                                              ", ".join("?" * len(cols))),
                      [e[k] for k in cols])
        for r in rollups:
            c.execute("INSERT INTO rollups (hour, username, group_name, host, category, requests,"
                      " bytes) VALUES (?, ?, ?, ?, ?, ?, ?)", r)
        for a in alerts:
            cols = sorted(a)
            cur = c.execute("INSERT INTO alerts (%s) VALUES (%s)" % (
                ", ".join(cols), ", ".join("?" * len(cols))), [a[k] for k in cols])
            ids.append(cur.lastrowid)
        for d in deliveries:
            c.execute("INSERT INTO deliveries (alert_id, channel, target, status, attempts,"
                      " last_error, next_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", d)
    return ids


def alert(t, user, theme, severity=3, **kw):
    a = {"time_ms": t, "username": user, "group_name": "secondary", "ip": "127.0.0.1",
         "theme": theme, "severity": severity, "lang": "en", "phrase": "hurt myself",
         "excerpt": "how do i hurt myself", "url": "https://search.test/?q=x",
         "source": "search"}
    a.update(kw)
    return a


class RecordsTestCase(HavenTestCase):
    def setUp(self):
        super().setUp()
        if not records_supported():
            self.skipTest("haven has no alerts command")
        self.db = self.tmp / "users.sqlite"
        self.haven("users", "add", "amy", "--group", "secondary", "--name", "Amy Pupil")
        self.haven("users", "add", "bob", "--group", "secondary")

    def haven(self, *args, expect=0, db=True):
        args = list(args) + (["--db", self.db] if db else [])
        env_tz = os.environ.get("TZ")
        os.environ["TZ"] = "UTC"
        try:
            p = run_haven(args)
        finally:
            if env_tz is None:
                del os.environ["TZ"]
            else:
                os.environ["TZ"] = env_tz
        if expect is not None and p.returncode != expect:
            self.fail("haven %s: expected exit %d, %s" % (" ".join(map(str, args)), expect,
                                                           describe(p)))
        return p

    def json_lines(self, p):
        return [json.loads(line) for line in p.stdout.splitlines()]


class TestAlerts(RecordsTestCase):
    def test_list_show_resolve(self):
        a1, a2, a3 = seed(self.db, alerts=[
            alert(T0_MS, "amy", "self-harm", 4),
            alert(T0_MS + 60000, "amy", "self-harm", 2, suppressed=1),
            alert(T0_MS + HOUR_MS, "bob", "bullying", 3, phrase="nobody likes you"),
        ], deliveries=[(1, "email", "dsl@school.test", "sent", 1, None, 0, T0_MS + 5000),
                       (1, "webhook", "http://127.0.0.1:9/h", "failed", 5, "connection refused",
                        0, T0_MS + 9000)])
        p = self.haven("alerts", "list")
        lines = p.stdout.splitlines()
        self.assertEqual(lines[0].split()[:4], ["ID", "TIME", "USER", "GROUP"])
        self.assertEqual(len(lines), 4)
        # Newest first, local (here UTC) times.
        self.assertTrue(lines[1].startswith("%-6d 2026-11-30T11:00:00 bob" % a3), lines[1])
        self.assertIn("nobody likes you", lines[1])

        objs = self.json_lines(self.haven("alerts", "list", "--json", "--user", "AMY"))
        self.assertEqual([o["id"] for o in objs], [a2, a1])
        self.assertEqual(objs[1]["time_ms"], T0_MS)
        self.assertEqual(objs[1]["time"], "2026-11-30T10:00:00.000Z")
        self.assertEqual(objs[1]["status"], "open")
        self.assertTrue(objs[0]["suppressed"])
        self.assertEqual(len(objs[1]["deliveries"]), 2)

        objs = self.json_lines(self.haven("alerts", "list", "--json", "--since",
                                          "2026-11-30T10:30:00Z"))
        self.assertEqual([o["id"] for o in objs], [a3])
        objs = self.json_lines(self.haven("alerts", "list", "--json", "--until",
                                          "2026-11-30T10:01"))
        self.assertEqual([o["id"] for o in objs], [a1])

        p = self.haven("alerts", "show", str(a1))
        self.assertIn("theme:      self-harm, severity 4 (content)", p.stdout)
        self.assertIn("excerpt:    how do i hurt myself", p.stdout)
        self.assertIn("connection refused", p.stdout)
        self.assertIn("status:     open", p.stdout)

        p = self.haven("alerts", "resolve", str(a1), "--outcome", "song lyrics",
                       "--false-positive", "--by", "dsl")
        self.assertIn("false positive", p.stdout)
        obj = self.json_lines(self.haven("alerts", "show", str(a1), "--json"))[0]
        self.assertEqual(obj["status"], "resolved")
        self.assertEqual(obj["outcome"], "song lyrics")
        self.assertTrue(obj["false_positive"])
        self.assertEqual(obj["resolved_by"], "dsl")
        # Resolving again updates the outcome.
        self.haven("alerts", "resolve", str(a1), "--outcome", "spoke to pupil")
        obj = self.json_lines(self.haven("alerts", "show", str(a1), "--json"))[0]
        self.assertEqual(obj["outcome"], "spoke to pupil")
        self.assertFalse(obj["false_positive"])

        objs = self.json_lines(self.haven("alerts", "list", "--open", "--json"))
        self.assertEqual({o["id"] for o in objs}, {a2, a3})

    def test_errors(self):
        p = self.haven("alerts", "show", "42", expect=1)
        self.assertIn("no alert 42", p.stderr)
        p = self.haven("alerts", "resolve", "42", "--outcome", "x", expect=1)
        self.assertIn("no alert 42", p.stderr)
        p = self.haven("alerts", "show", "forty", expect=2)
        self.assertIn("'forty' is not an alert id", p.stderr)
        p = self.haven("alerts", "resolve", "1", expect=2)
        self.assertIn("--outcome", p.stderr)
        p = self.haven("alerts", "list", "--since", "last tuesday", expect=2)
        self.assertIn("--since 'last tuesday' is not a time", p.stderr)
        p = self.haven("alerts", "list", "--until", "2026-13-01", expect=2)
        self.assertIn("'2026-13-01'", p.stderr)
        p = self.haven("alerts", "frob", expect=2)
        self.assertIn("unknown alerts sub-command 'frob'", p.stderr)
        p = self.haven("alerts", "list", "--db", self.tmp / "none.sqlite", db=False, expect=1)
        self.assertIn("none.sqlite", p.stderr)

    def test_relative_time(self):
        now = int(time.time() * 1000)
        seed(self.db, alerts=[alert(now - 2 * DAY_MS, "amy", "bullying"),
                              alert(now - HOUR_MS, "amy", "self-harm")])
        objs = self.json_lines(self.haven("alerts", "list", "--json", "--since", "24h"))
        self.assertEqual([o["theme"] for o in objs], ["self-harm"])
        objs = self.json_lines(self.haven("alerts", "list", "--json", "--since", "7d"))
        self.assertEqual(len(objs), 2)


class TestActivity(RecordsTestCase):
    def test_window(self):
        seed(self.db, events=[
            {"time_ms": T0_MS - 30 * 60000, "kind": "block", "username": "amy",
             "url": "http://bad.test/", "host": "bad.test", "category": "pornography"},
            {"time_ms": T0_MS + 10 * 60000, "kind": "search", "username": "amy",
             "search": "maths homework help"},
            {"time_ms": T0_MS + 3 * HOUR_MS, "kind": "search", "username": "amy",
             "search": "later search"},
            {"time_ms": T0_MS, "kind": "search", "username": "bob", "search": "bob's"},
        ], rollups=[(T0_MS // 1000, "amy", "secondary", "bbc.co.uk", "news", 12, 3456),
                    (T0_MS // 1000 + 5 * 3600, "amy", "secondary", "late.test", "news", 1, 1)])
        p = self.haven("activity", "amy", "--around", "2026-11-30T10:00")
        self.assertIn("2026-11-30T09:30:00 block", p.stdout)
        self.assertIn("maths homework help", p.stdout)
        self.assertNotIn("later search", p.stdout)
        self.assertNotIn("bob's", p.stdout)
        self.assertIn("bbc.co.uk", p.stdout)
        self.assertNotIn("late.test", p.stdout)

        objs = self.json_lines(self.haven("activity", "amy", "--around", "2026-11-30T10:00:00Z",
                                          "--hours", "3", "--json"))
        kinds = [(o["type"], o.get("search") or o.get("host")) for o in objs]
        self.assertEqual(kinds, [("event", "bad.test"), ("event", "maths homework help"),
                                 ("rollup", "bbc.co.uk")])
        self.assertEqual(objs[2]["requests"], 12)

        p = self.haven("activity", "amy", "--around", "2026-01-01")
        self.assertIn("no events", p.stdout)
        p = self.haven("activity", "amy", "--hours", "0", expect=2)
        self.assertIn("--hours '0'", p.stderr)
        p = self.haven("activity", expect=2)
        self.assertIn("needs a username", p.stderr)


class TestReport(RecordsTestCase):
    def test_report(self):
        ids = seed(self.db, events=[
            {"time_ms": T0_MS, "kind": "block", "username": "amy", "category": "pornography"},
            {"time_ms": T0_MS + 1, "kind": "block", "username": "bob", "category": "pornography"},
            {"time_ms": T0_MS + 2, "kind": "block", "username": "bob", "category": "gambling"},
            {"time_ms": T0_MS + 3, "kind": "match", "username": "amy", "theme": "self-harm",
             "severity": 4},
            {"time_ms": T0_MS + 4, "kind": "search", "username": "amy", "search": "cats"},
            {"time_ms": T0_MS - 40 * DAY_MS, "kind": "block", "category": "violence"},
        ], alerts=[alert(T0_MS, "amy", "self-harm"), alert(T0_MS, "amy", "bullying"),
                   alert(T0_MS, "bob", "gambling")])
        self.haven("alerts", "resolve", str(ids[2]), "--outcome", "advert", "--false-positive")
        self.haven("alerts", "resolve", str(ids[1]), "--outcome", "parents told")
        doc = json.loads(self.haven("report", "--since", "2026-11-01", "--until", "2026-12-01",
                                    "--json").stdout)
        self.assertEqual(doc["blocked_categories"], [{"category": "pornography", "count": 2},
                                                     {"category": "gambling", "count": 1}])
        self.assertEqual(doc["searches_by_theme"], [{"theme": "", "count": 1},
                                                    {"theme": "self-harm", "count": 1}])
        self.assertEqual(doc["users_by_alerts"][0], {"username": "amy", "count": 2})
        self.assertEqual(doc["alerts_by_4c"]["content"], 1)   # self-harm
        self.assertEqual(doc["alerts_by_4c"]["contact"], 1)   # bullying
        self.assertEqual(doc["alerts_by_4c"]["commerce"], 1)  # gambling
        self.assertEqual({o["outcome"]: o["count"] for o in doc["alerts_by_outcome"]},
                         {"open": 1, "resolved": 1, "false positive": 1})
        p = self.haven("report", "--since", "2026-11-01", "--until", "2026-12-01")
        self.assertIn("Top blocked categories", p.stdout)
        self.assertIn("pornography", p.stdout)
        self.assertNotIn("violence", p.stdout)
        self.assertIn("Alerts by 4C risk area", p.stdout)


class TestPurgeAndSar(RecordsTestCase):
    def config(self, retain_events="30d"):
        return write(self.tmp / "haven.conf",
                     "listen 127.0.0.1:3128\npolicy %s\ndatabase lists.cdb\ndata-dir %s\n"
                     "retain-events %s\nretain-rollups 10d\nretain-alerts 100d\n"
                     % (os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                     "demo", "policy.conf"), self.tmp, retain_events))

    def test_purge(self):
        now = int(time.time() * 1000)
        ids = seed(self.db, events=[
            {"time_ms": now - 31 * DAY_MS, "kind": "block", "username": "amy"},
            {"time_ms": now - 29 * DAY_MS, "kind": "block", "username": "amy"},
        ], rollups=[((now - 20 * DAY_MS) // HOUR_MS * 3600, "amy", "secondary", "a.test", "news",
                     1, 1)],
            alerts=[alert(now - 101 * DAY_MS, "amy", "bullying"),
                    alert(now - 50 * DAY_MS, "amy", "bullying")])
        seed(self.db, deliveries=[(ids[0], "email", "dsl@school.test", "sent", 1, None, 0, now)])
        cfg = self.config()
        p = self.haven("purge", "--config", cfg, "--dry-run", db=False)
        self.assertIn("would delete 1 events (retain-events 30d)", p.stdout)
        self.assertIn("would delete 1 alerts and 1 deliveries", p.stdout)
        self.assertIn("nothing deleted", p.stdout)
        p = self.haven("purge", "--config", cfg, db=False)
        self.assertIn("deleted 1 events", p.stdout)
        self.assertIn("deleted 1 hourly roll-ups", p.stdout)
        self.assertIn("deleted 1 alerts and 1 deliveries", p.stdout)
        p = self.haven("purge", "--config", cfg, db=False)
        self.assertIn("deleted 0 events", p.stdout)
        objs = self.json_lines(self.haven("alerts", "list", "--json"))
        self.assertEqual([o["id"] for o in objs], [ids[1]])

        p = self.haven("purge", "--config", self.tmp / "missing.conf", db=False, expect=1)
        self.assertIn("missing.conf", p.stderr)

    def test_sar_outlives_account(self):
        seed(self.db, events=[{"time_ms": T0_MS, "kind": "block", "username": "amy",
                               "category": "pornography"},
                              {"time_ms": T0_MS, "kind": "block", "username": "bob"}],
             alerts=[alert(T0_MS, "amy", "self-harm")],
             deliveries=[(1, "email", "dsl@school.test", "sent", 1, None, 0, T0_MS)])
        self.haven("session", "add", "amy", "127.0.0.1")
        out = self.tmp / "amy.json"
        self.haven("sar", "amy", "-o", out)
        doc = json.loads(out.read_text())
        self.assertEqual(doc["subject_access_request"], "amy")
        self.assertEqual(doc["user"]["display_name"], "Amy Pupil")
        self.assertFalse(doc["user"]["password_set"])
        self.assertNotIn("password_hash", json.dumps(doc))
        self.assertEqual(len(doc["sessions"]), 1)
        self.assertEqual(len(doc["events"]), 1)
        self.assertEqual(doc["alerts"][0]["deliveries"][0]["target"], "dsl@school.test")
        self.assertEqual(os.stat(out).st_mode & 0o777, 0o600)

        # Deleting the account keeps the safeguarding records; the SAR still finds them.
        self.haven("users", "del", "amy")
        out2 = self.tmp / "amy2.json"
        self.haven("sar", "amy", "-o", out2)
        doc = json.loads(out2.read_text())
        self.assertIsNone(doc["user"])
        self.assertEqual(len(doc["events"]), 1)
        self.assertEqual(len(doc["alerts"]), 1)

        p = self.haven("sar", "nobody", "-o", self.tmp / "n.json", expect=1)
        self.assertIn("nothing is held about 'nobody'", p.stderr)
        self.assertFalse((self.tmp / "n.json").exists())
        self.assertEqual([f.name for f in self.tmp.iterdir() if ".tmp" in f.name], [])
        p = self.haven("sar", "amy", expect=2)
        self.assertIn("-o FILE", p.stderr)


if __name__ == "__main__":
    unittest.main()
