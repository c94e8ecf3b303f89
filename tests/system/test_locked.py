"""The locked tier (IWF, CTIRU): always blocked, whatever the policy says.

Lists compiled with `--list iwf=FILE` and `--list terrorism=FILE` fall in the locked categories;
no allow list, group allow-list, `allow site` or category rule may let them through, and a
policy that tries to allow them with a rule is refused.
"""

import re
import unittest

from helpers import (DEMO_LISTS, MONDAY_AFTER_SCHOOL, MONDAY_LESSON, HavenTestCase, check,
                     compile_db, describe, run_haven, write)

IWF_TEXT = "Internet Watch Foundation"

IWF_LIST = """\
example-abuse.test/images/1
abuse-domain.test
"""

TERROR_LIST = """\
example-terror.test/video/7
"""

# A policy that tries every way to let the locked entries through.
OPEN_POLICY = """\
school "Test School"
timezone Europe/London
default allow

list everything "Opened up for the test" {
    example-abuse.test
    example-abuse.test/images/1
    abuse-domain.test
    example-terror.test
}

group open {
    allow-list everything
    allow site example-abuse.test/images/1 "Trying to allow an IWF URL"
    allow site abuse-domain.test "Trying to allow an IWF domain"
    allow site example-terror.test/video/7 "Trying to allow a CTIRU URL"
    allow pornography games
    default allow
    block-ip-hosts off
    ports any
}

group strict {
    block pornography
    default block
}

default-group open
"""


class TestLockedTier(HavenTestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = cls.class_tmp()
        iwf = write(cls.dir / "iwf.txt", IWF_LIST)
        terror = write(cls.dir / "ctiru.txt", TERROR_LIST)
        cls.db = cls.dir / "locked.cdb"
        compile_db(cls.db, ["--list", "iwf=%s" % iwf, "--list", "terrorism=%s" % terror,
                            "--list", "pornography=%s" % (DEMO_LISTS / "pornography.txt")])
        cls.policy = write(cls.dir / "open.conf", OPEN_POLICY)

    IWF_URLS = [
        "http://example-abuse.test/images/1",
        "https://example-abuse.test/images/1/",
        "http://EXAMPLE-ABUSE.TEST.:80/images/1/thumb.jpg?size=2",
        "http://www.example-abuse.test/images/1",
        "http://user@example-abuse.test/%69mages/1",
        "http://abuse-domain.test/",
        "http://cdn.abuse-domain.test/anything",
    ]

    def test_iwf_entries_blocked_despite_every_allow(self):
        for at in (MONDAY_LESSON, MONDAY_AFTER_SCHOOL):
            for group in ("open", "strict"):
                for o in check(self.IWF_URLS, self.db, policy=self.policy, group=group, at=at):
                    with self.subTest(url=o["url"], group=group, at=at):
                        self.assertVerdict(o, "block", "iwf")
                        self.assertEqual(o["rule"], "locked tier")
                        self.assertIn(IWF_TEXT, o["reason"])

    def test_terrorism_entries_blocked_despite_every_allow(self):
        urls = ["http://example-terror.test/video/7", "http://www.example-terror.test/video/7/x"]
        for o in check(urls, self.db, policy=self.policy, group="open"):
            with self.subTest(url=o["url"]):
                self.assertVerdict(o, "block", "terrorism")
                self.assertEqual(o["rule"], "locked tier")
                self.assertIn("always blocked", o["reason"])

    def test_neighbours_of_locked_urls_follow_the_policy(self):
        # The IWF entry is one URL: the rest of that site is the policy's to decide.
        urls = ["http://example-abuse.test/images/2", "http://example-abuse.test/",
                "http://example-terror.test/video/8"]
        for o in check(urls, self.db, policy=self.policy, group="open"):
            with self.subTest(url=o["url"]):
                self.assertVerdict(o, "allow")
                self.assertIn("everything", o["reason"])
                self.assertNotIn("iwf", o["categories"])

    def test_locked_tier_with_the_demo_policy(self):
        for group in ("primary", "secondary", "sixth-form", "staff", "guests"):
            o = check(["http://example-abuse.test/images/1"], self.db, group=group)[0]
            with self.subTest(group=group):
                self.assertVerdict(o, "block", "iwf")
                self.assertIn(IWF_TEXT, o["reason"])

    def test_squid_helper_blocks_locked_entries_for_every_group(self):
        lines = "".join("%d http://example-abuse.test/images/1 10.0.0.1/- - GET group=%s\n" % (i, g)
                        for i, g in enumerate(("open", "strict")))
        p = run_haven(["squid-helper", "--db", self.db, "--policy", self.policy], input=lines)
        self.assertEqual(p.returncode, 0, describe(p))
        answers = p.stdout.splitlines()
        self.assertEqual(len(answers), 2, describe(p))
        for i, a in enumerate(answers):
            self.assertTrue(a.startswith("%d OK status=302 url=" % i), a)
            self.assertIn("category=iwf", a)
            self.assertIn("Internet%20Watch%20Foundation", a)

    def assertRefused(self, text, line, fragment):
        policy = write(self.tmp / "bad.conf", text)
        p = run_haven(["check", "--db", self.db, "--policy", policy, "example.org"])
        self.assertEqual(p.returncode, 1, describe(p))
        self.assertEqual(p.stdout, "")
        self.assertRegex(p.stderr, r"^(haven: )?%s:%d: " % (re.escape(str(policy)), line),
                         describe(p))
        self.assertIn(fragment, p.stderr)
        return p

    def test_policy_that_allows_iwf_is_refused(self):
        text = "group g {\n    default allow\n    allow iwf\n}\n"
        p = self.assertRefused(text, 3, "locked tier")
        self.assertIn("iwf", p.stderr)

    def test_policy_that_warns_on_terrorism_is_refused(self):
        text = "# comment\ngroup g {\n    warn games terrorism during lessons\n}\n"
        text = "schedule lessons {\n    mon-fri 09:00-15:00\n}\n" + text
        self.assertRefused(text, 6, "locked tier")

    def test_block_iwf_is_accepted(self):
        policy = write(self.tmp / "ok.conf", "group g {\n    block iwf terrorism\n}\n")
        o = check(["http://example-abuse.test/images/1"], self.db, policy=policy)[0]
        self.assertVerdict(o, "block", "iwf")
        self.assertEqual(o["rule"], "locked tier")

    def test_locked_statement_adds_a_category_to_the_locked_tier(self):
        text = ("locked pornography\n"
                "list mine \"test\" {\n    pornhub.com\n}\n"
                "group g {\n    allow-list mine\n    allow site xvideos.com \"test\"\n"
                "    default allow\n}\n")
        policy = write(self.tmp / "locked.conf", text)
        for o in check(["pornhub.com", "https://www.xvideos.com/"], self.db, policy=policy):
            with self.subTest(url=o["url"]):
                self.assertVerdict(o, "block", "pornography")
                self.assertEqual(o["rule"], "locked tier")
        self.assertRefused("locked pornography\ngroup g {\n    allow pornography\n}\n", 3,
                           "locked tier")


if __name__ == "__main__":
    unittest.main()
