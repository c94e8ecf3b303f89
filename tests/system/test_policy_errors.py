"""Malformed policies are refused with "FILE:LINE: message" naming the line at fault, exit 1.

Each case is a whole policy file; the line number is the line the mistake is on (for a block
that is never closed: the line that opened it).
"""

import re
import unittest

from helpers import DEMO_POLICY, HavenTestCase, compile_demo_db, describe, run_haven, write

GOOD_TAIL = """\
group pupils {
    block pornography
    default allow
}
"""

# name: (policy text, line of the error, a fragment of the message)
CASES = {
    "unknown_top_statement": (
        'school "Test"\n'
        "timezone Europe/London\n"
        "colour blue\n" + GOOD_TAIL,
        3, "unknown statement 'colour'"),
    "unknown_group_statement": (
        "group pupils {\n"
        "    block pornography\n"
        "    frobnicate on\n"
        "}\n",
        3, "unknown statement 'frobnicate'"),
    "unknown_category_typo": (
        "# a comment\n"
        "\n"
        "group pupils {\n"
        "    block gambling pornograpy drugs\n"
        "}\n",
        4, "unknown category 'pornograpy'"),
    "ut1_name_instead_of_category": (
        "group pupils {\n"
        "    block adult\n"
        "}\n",
        2, "pornography"),
    "unterminated_string": (
        'school "Demo Academy\n'
        "timezone Europe/London\n" + GOOD_TAIL,
        1, "unterminated string"),
    "unterminated_reason_in_list": (
        'list help "Help" {\n'
        "    childline.org.uk\n"
        '    nhs.uk "NHS\n'
        "}\n" + GOOD_TAIL,
        3, "unterminated string"),
    "missing_closing_brace": (
        'school "Test"\n'
        "group pupils {\n"
        "    block pornography\n"
        "    default allow\n",
        2, "never closed"),
    "missing_closing_brace_of_schedule": (
        "schedule lessons {\n"
        "    mon-fri 08:45-10:30\n"
        "\n"
        "group pupils {\n"
        "    block games during lessons\n"
        "}\n",
        4, "nest"),
    "brace_without_block": (
        GOOD_TAIL + "}\n",
        5, "'}' without a block"),
    "bad_time_range": (
        "schedule lessons {\n"
        "    mon-fri 08:45-10:30 1050-12:20\n"
        "}\n" + GOOD_TAIL,
        2, "bad time range '1050-12:20'"),
    "time_range_out_of_range": (
        "schedule lessons {\n"
        "    mon-fri 08:45-10:30\n"
        "    sat 09:00-25:00\n"
        "}\n" + GOOD_TAIL,
        3, "bad time range"),
    "time_range_backwards": (
        "schedule evening {\n"
        "    daily 22:00-06:00\n"
        "}\n" + GOOD_TAIL,
        2, "ends before it starts"),
    "bad_days": (
        "schedule lessons {\n"
        "    monday-friday 08:45-15:15\n"
        "}\n" + GOOD_TAIL,
        2, "bad days"),
    "empty_schedule": (
        "schedule lessons {\n"
        "}\n" + GOOD_TAIL,
        2, "has no times"),
    "list_entry_without_reason": (
        "list extra {\n"
        '    example.com "Example"\n'
        "    example.net\n"
        "}\n" + GOOD_TAIL,
        3, "needs a reason"),
    "allow_site_without_reason": (
        "group pupils {\n"
        "    block pornography\n"
        "    allow site example.com\n"
        "}\n",
        3, "reason"),
    "bad_list_entry": (
        'list extra "Extra" {\n'
        "    exa mple.com\n"
        "}\n" + GOOD_TAIL,
        2, "list line"),
    "invalid_host_in_list": (
        'list extra "Extra" {\n'
        "    bad_host!.example\n"
        "}\n" + GOOD_TAIL,
        2, "bad_host!.example"),
    "undefined_schedule": (
        "schedule lessons {\n"
        "    mon-fri 08:45-15:15\n"
        "}\n"
        "group pupils {\n"
        "    block pornography\n"
        "    block games during lesons\n"
        "}\n",
        6, "schedule 'lesons' is not defined"),
    "undefined_list": (
        "group pupils {\n"
        "    allow-list help-sites\n"
        "}\n",
        2, "list 'help-sites' is not defined"),
    "undefined_default_group": (
        GOOD_TAIL + "default-group students\n",
        5, "group 'students' is not defined"),
    "bad_default_action": (
        "group pupils {\n"
        "    default maybe\n"
        "}\n",
        2, "default must be allow, warn or block"),
    "bad_port": (
        "group pupils {\n"
        "    ports 80 443 99999\n"
        "}\n",
        2, "bad port '99999'"),
    "bad_on_off": (
        "group pupils {\n"
        "    safe-search sometimes\n"
        "}\n",
        2, "on or off"),
    "unknown_timezone": (
        'school "Test"\n'
        "timezone Mars/Olympus_Mons\n" + GOOD_TAIL,
        2, "Mars/Olympus_Mons"),
    "duplicate_group": (
        GOOD_TAIL + GOOD_TAIL,
        5, "defined twice"),
    "nested_block": (
        "group pupils {\n"
        "    list inner {\n"
        "}\n",
        2, "nest"),
    "crlf_line_endings_still_count_lines": (
        "# windows\r\n\r\ngroup pupils {\r\n    block pornograpy\r\n}\r\n",
        4, "unknown category 'pornograpy'"),
}


class TestPolicyErrors(HavenTestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = cls.class_tmp()
        cls.db = compile_demo_db(cls.dir)

    def run_policy(self, text, name="policy.conf"):
        path = write(self.tmp / name, text)
        return path, run_haven(["check", "--db", self.db, "--policy", path, "example.org"])

    def test_good_tail_is_valid(self):
        path, p = self.run_policy(GOOD_TAIL)
        self.assertEqual(p.returncode, 0, describe(p))

    def test_malformed_policies(self):
        self.assertGreaterEqual(len(CASES), 12)
        for name, (text, line, fragment) in CASES.items():
            with self.subTest(case=name):
                path, p = self.run_policy(text, name + ".conf")
                self.assertEqual(p.returncode, 1, describe(p))
                self.assertEqual(p.stdout, "", describe(p))
                first = p.stderr.splitlines()[0] if p.stderr else ""
                # "haven: " is the program's prefix; the message itself starts with FILE:LINE:
                m = re.match(r"^(?:haven: )?(.+?):(\d+): (.+)$", first)
                self.assertIsNotNone(m, "no FILE:LINE: message: " + describe(p))
                self.assertEqual(m.group(1), str(path))
                self.assertEqual(int(m.group(2)), line, first)
                self.assertIn(fragment, m.group(3))

    def test_squid_helper_refuses_a_bad_policy_too(self):
        text, line, fragment = CASES["undefined_schedule"]
        path = write(self.tmp / "bad.conf", text)
        p = run_haven(["squid-helper", "--db", self.db, "--policy", path],
                      input="http://example.org/ 10.0.0.1/- - GET\n")
        self.assertEqual(p.returncode, 1, describe(p))
        self.assertEqual(p.stdout, "")
        self.assertIn("%s:%d: " % (path, line), p.stderr)

    def test_demo_policy_is_valid(self):
        p = run_haven(["check", "--db", self.db, "--policy", DEMO_POLICY, "example.org"])
        self.assertEqual(p.returncode, 0, describe(p))


if __name__ == "__main__":
    unittest.main()
