"""`haven users` and `haven session`: the users database from the command line.

Users are added one by one or imported from the CSV a school's MIS exports (docs/users.md);
IP sessions tie an address to a person for a while. Every rejected CSV row is reported as
FILE:LINE: reason, and an import with any rejected row writes nothing.
"""

import json
import sqlite3
import unittest

from helpers import HavenTestCase, describe, haven_bin, notice, run_haven, write

_supported = None


def users_supported():
    """Whether this haven binary has the users and session commands yet."""
    global _supported
    if _supported is None:
        p = run_haven(["users", "--help"]) if haven_bin() else None
        _supported = p is not None and p.returncode == 0
        if not _supported:
            notice("this haven has no `users` command yet: skipping tests/system/test_users.py")
    return _supported


class UsersTestCase(HavenTestCase):
    def setUp(self):
        super().setUp()
        if not users_supported():
            self.skipTest("haven has no users command")
        self.db = self.tmp / "users.sqlite"

    def haven(self, *args, input=None, expect=0):
        p = run_haven(list(args) + ["--db", self.db], input=input)
        if expect is not None and p.returncode != expect:
            self.fail("haven %s: expected exit %d, %s" % (" ".join(map(str, args)), expect,
                                                           describe(p)))
        return p

    def users(self):
        """{username: object} from `haven users list --json`."""
        p = self.haven("users", "list", "--json")
        out = {}
        for line in p.stdout.splitlines():
            obj = json.loads(line)
            out[obj["username"]] = obj
        return out

    def sessions(self):
        p = self.haven("session", "list", "--json")
        return {o["ip"]: o for o in map(json.loads, p.stdout.splitlines())}

    def stored_hash(self, user):
        with sqlite3.connect(str(self.db)) as db:
            row = db.execute("SELECT password_hash FROM users WHERE username = ?",
                             (user,)).fetchone()
        return row[0] if row else None


class TestUsersAdd(UsersTestCase):
    def test_add_list_delete(self):
        p = self.haven("users", "add", "JSmith", "--group", "staff", "--name", "John Smith")
        self.assertIn("added user jsmith", p.stdout)
        self.haven("users", "add", "pupil1", "--group", "secondary")
        users = self.users()
        self.assertEqual(set(users), {"jsmith", "pupil1"})
        self.assertEqual(set(users["jsmith"]), {"username", "group", "display_name", "password",
                                                "created", "updated"})
        self.assertEqual(users["jsmith"]["group"], "staff")
        self.assertEqual(users["jsmith"]["display_name"], "John Smith")
        self.assertIsNone(users["pupil1"]["display_name"])
        self.assertFalse(users["pupil1"]["password"])

        # Adding again changes the group; the plain listing shows it.
        p = self.haven("users", "add", "pupil1", "--group", "sixth-form")
        self.assertIn("updated user pupil1", p.stdout)
        p = self.haven("users", "add", "pupil1", "--group", "sixth-form")
        self.assertIn("unchanged", p.stdout)
        p = self.haven("users", "list")
        self.assertRegex(p.stdout, r"(?m)^pupil1\s+sixth-form\s+no\s*$")
        self.assertRegex(p.stdout, r"(?m)^jsmith\s+staff\s+no\s+John Smith$")

        p = self.haven("users", "del", "pupil1")
        self.assertIn("deleted user pupil1", p.stdout)
        p = self.haven("users", "del", "pupil1", expect=1)
        self.assertIn("no user 'pupil1'", p.stderr)
        self.assertEqual(set(self.users()), {"jsmith"})

    def test_bad_usage(self):
        cases = [
            (["users", "add", "bob"], "--group"),
            (["users", "add", "bob", "--group", "two words"], "group name"),
            (["users", "add", "bad name", "--group", "staff"], "space"),
            (["users", "add", "a:b", "--group", "staff"], "':'"),
            (["users", "add", "bob", "--group", "staff", "extra"], "unexpected argument 'extra'"),
            (["users", "list", "--ttl", "8h"], "--ttl"),
            (["users", "frob"], "unknown users sub-command 'frob'"),
            (["users", "import"], "CSV"),
        ]
        for args, words in cases:
            with self.subTest(args=args):
                p = self.haven(*args, expect=2)
                self.assertIn(words, p.stderr)
                self.assertIn("usage: haven users", p.stderr)
        p = run_haven(["users"])
        self.assertEqual(p.returncode, 2, describe(p))

    def test_passwords(self):
        self.haven("users", "add", "alice", "--group", "staff", "--password-stdin",
                   input="first password\n")
        self.assertTrue(self.users()["alice"]["password"])
        first = self.stored_hash("alice")
        self.assertTrue(first.startswith("$argon2id$v=19$"), first)
        self.assertNotIn("first password", first)

        self.haven("users", "add", "bob", "--group", "staff")
        p = self.haven("users", "passwd", "bob", input="bobs password\r\n")
        self.assertIn("password set for bob", p.stdout)
        self.assertTrue(self.users()["bob"]["password"])

        # A new password for alice replaces the hash.
        self.haven("users", "passwd", "alice", input="second password\n")
        self.assertNotEqual(self.stored_hash("alice"), first)

        p = self.haven("users", "passwd", "nobody", input="x\n", expect=1)
        self.assertIn("no user 'nobody'", p.stderr)
        p = self.haven("users", "passwd", "bob", input="", expect=1)
        self.assertIn("no password", p.stderr)
        p = self.haven("users", "passwd", "bob", input="\n", expect=1)
        self.assertIn("empty", p.stderr)
        p = self.haven("users", "passwd", "bob", input="x" * 300 + "\n", expect=1)
        self.assertIn("longer than", p.stderr)


class TestUsersImport(UsersTestCase):
    def csv(self, text, name="users.csv"):
        return write(self.tmp / name, text)

    def test_import_and_reimport(self):
        # A hash made by haven itself, to import elsewhere.
        self.haven("users", "add", "donor", "--group", "staff", "--password-stdin",
                   input="carried over\n")
        digest = self.stored_hash("donor")
        self.haven("users", "del", "donor")

        f = self.csv("\ufeffUsername,Display Name,Group,Year,UPN,password_hash\r\n"
                     "JSmith,\"Smith, John\",staff,,js@school.test,\"%s\"\r\n"
                     "pupil1,\"Pupil \"\"PJ\"\" One\",,Year 7,p1@school.test,\r\n"
                     "\r\n"
                     "pupil2,,,R,,\r\n"
                     "pupil3,Sixth Former,,Y12,,\r\n" % digest)
        p = self.haven("users", "import", f)
        self.assertIn("users.csv: 4 added, 0 updated, 0 unchanged, 0 rejected", p.stdout)
        self.assertIn("users.csv:1: note: column 'upn' is not one haven reads: ignored", p.stderr)
        users = self.users()
        self.assertEqual({u: o["group"] for u, o in users.items()},
                         {"jsmith": "staff", "pupil1": "secondary", "pupil2": "primary",
                          "pupil3": "sixth-form"})
        self.assertEqual(users["jsmith"]["display_name"], "Smith, John")
        self.assertEqual(users["pupil1"]["display_name"], 'Pupil "PJ" One')
        self.assertTrue(users["jsmith"]["password"])
        self.assertEqual(self.stored_hash("jsmith"), digest)

        # The same file again changes nothing; a changed row is an update.
        p = self.haven("users", "import", f)
        self.assertIn("0 added, 0 updated, 4 unchanged, 0 rejected", p.stdout)
        f2 = self.csv("username,year\npupil1,12\npupil4,Year 11\n", "next-year.csv")
        p = self.haven("users", "import", f2)
        self.assertIn("1 added, 1 updated, 0 unchanged, 0 rejected", p.stdout)
        users = self.users()
        self.assertEqual(users["pupil1"]["group"], "sixth-form")
        # A file without display names or hashes keeps the ones stored.
        self.assertEqual(users["pupil1"]["display_name"], 'Pupil "PJ" One')
        self.assertEqual(len(users), 5)

    def test_bad_rows_import_nothing(self):
        f = self.csv("username,group,display_name,password_hash\n"
                     "good1,staff,,\n"
                     "bad name,staff,,\n"
                     "good2,not a group,,\n"
                     "good3,staff,,hunter2\n"
                     "good1,staff,,\n"
                     "good4,staff\n"
                     'good5,staff,Quote"inside,\n'
                     "good6,staff,,\n")
        p = self.haven("users", "import", f, expect=1)
        self.assertIn("users.csv: 2 added, 0 updated, 0 unchanged, 6 rejected", p.stdout)
        for line, reason in [(3, "space"), (4, "group name"), (5, "argon2id"),
                             (6, "already on line 2"), (7, "the row has 2 fields"),
                             (8, "quote")]:
            self.assertRegex(p.stderr, r"(?m)^%s:%d: .*%s" % (f, line, reason))
        self.assertIn("nothing imported", p.stderr)
        self.assertEqual(self.users(), {})

    def test_dry_run(self):
        self.haven("users", "add", "existing", "--group", "staff")
        f = self.csv("username,group\nexisting,primary\nnewone,primary\n")
        p = self.haven("users", "import", f, "--dry-run")
        self.assertIn("1 added, 1 updated, 0 unchanged, 0 rejected", p.stdout)
        self.assertIn("dry run: nothing written", p.stdout)
        self.assertEqual({u: o["group"] for u, o in self.users().items()}, {"existing": "staff"})

    def test_year_map(self):
        m = write(self.tmp / "years.map", "# our school\nR-6 = juniors\n")
        f = self.csv("username,year\na,Year 3\nb,Y9\n")
        p = self.haven("users", "import", f, "--year-map", m, expect=1)
        self.assertIn("years.map:2:", p.stderr)
        write(m, "# our school\nR = juniors\n1-6 = juniors\n7-13 = seniors\n")
        p = self.haven("users", "import", f, "--year-map", m)
        self.assertIn("2 added", p.stdout)
        self.assertEqual({u: o["group"] for u, o in self.users().items()},
                         {"a": "juniors", "b": "seniors"})
        # A year the map does not name is a rejected row.
        f = self.csv("username,year\nc,N\n", "nursery.csv")
        p = self.haven("users", "import", f, "--year-map", m, expect=1)
        self.assertIn("nursery.csv:2: user 'c': year 'N' is not in the year map", p.stderr)

    def test_unusable_files(self):
        cases = [
            ("", "empty"),
            ("group,name\nstaff,x\n", "no 'username' column"),
            ("username,name\nx,y\n", "neither a 'group' nor a 'year'"),
            ("username,group,GROUP\nx,y,z\n", "'group' twice"),
        ]
        for text, words in cases:
            with self.subTest(text=text):
                f = self.csv(text)
                p = self.haven("users", "import", f, expect=1)
                self.assertIn(words, p.stderr)
        p = self.haven("users", "import", self.tmp / "missing.csv", expect=1)
        self.assertIn("missing.csv", p.stderr)
        self.assertEqual(self.users(), {})


class TestSessions(UsersTestCase):
    def test_add_list_delete(self):
        self.haven("users", "add", "alice", "--group", "staff")
        self.haven("users", "add", "bob", "--group", "secondary")
        p = self.haven("session", "add", "alice", "127.0.0.1")
        self.assertIn("127.0.0.1 is alice (group staff)", p.stdout)
        # An IPv4-mapped IPv6 address is stored as the IPv4 address.
        self.haven("session", "add", "bob", "::ffff:127.0.0.2", "--ttl", "30m")
        self.haven("session", "add", "BOB", "::1", "--ttl", "1h30m")
        sessions = self.sessions()
        self.assertEqual({ip: o["username"] for ip, o in sessions.items()},
                         {"127.0.0.1": "alice", "127.0.0.2": "bob", "::1": "bob"})
        self.assertEqual(set(sessions["::1"]), {"ip", "username", "created", "expires"})
        # One person per address: adding again replaces.
        self.haven("session", "add", "bob", "127.0.0.1", "--ttl", "1d")
        self.assertEqual(self.sessions()["127.0.0.1"]["username"], "bob")
        p = self.haven("session", "list")
        self.assertRegex(p.stdout, r"(?m)^::1\s+bob\s+\d{4}-\d\d-\d\dT")

        p = self.haven("session", "del", "::ffff:127.0.0.2")
        self.assertIn("session for 127.0.0.2 ended", p.stdout)
        p = self.haven("session", "del", "127.0.0.2", expect=1)
        self.assertIn("no session for 127.0.0.2", p.stderr)

        # Deleting a user ends its sessions.
        self.haven("users", "del", "bob")
        self.assertEqual(self.sessions(), {})

    def test_errors(self):
        self.haven("users", "add", "alice", "--group", "staff")
        p = self.haven("session", "add", "nobody", "127.0.0.1", expect=1)
        self.assertIn("no user 'nobody'", p.stderr)
        for ip in ("localhost", "127.0.0.256", "::1%lo"):
            with self.subTest(ip=ip):
                p = self.haven("session", "add", "alice", ip, expect=2)
                self.assertIn("'%s' is not an IP address" % ip, p.stderr)
        for ttl in ("8", "0h", "5x", "h", "400d", "-1h"):
            with self.subTest(ttl=ttl):
                p = self.haven("session", "add", "alice", "127.0.0.1", "--ttl", ttl, expect=2)
                self.assertIn("not a duration", p.stderr)
        p = self.haven("session", "add", "alice", expect=2)
        self.assertIn("needs a username and an IP address", p.stderr)
        p = self.haven("session", "frob", expect=2)
        self.assertIn("unknown session sub-command", p.stderr)
        self.assertEqual(self.sessions(), {})


class TestDatabase(UsersTestCase):
    def test_newer_schema_refused(self):
        self.haven("users", "add", "alice", "--group", "staff")
        with sqlite3.connect(str(self.db)) as db:
            db.execute("PRAGMA user_version = 99")
        p = self.haven("users", "list", expect=1)
        self.assertIn("schema version 99", p.stderr)
        self.assertIn("newer", p.stderr)

    def test_not_a_database(self):
        write(self.db, "username,group\nalice,staff\n")
        p = self.haven("users", "list", expect=1)
        self.assertIn(str(self.db), p.stderr)
        self.assertIn("not a database", p.stderr)

    def test_missing_directory(self):
        p = run_haven(["users", "list", "--db", self.tmp / "no" / "such" / "users.sqlite"])
        self.assertEqual(p.returncode, 1, describe(p))
        self.assertIn("users.sqlite", p.stderr)


if __name__ == "__main__":
    unittest.main()
