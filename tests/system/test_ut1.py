"""The real lists: $HAVEN_DATA/ut1 (the UT1 blacklists) plus adult-top1m, compiled once.

Entries are picked from the data files at test time, so the tests follow the data. Skips with a
printed notice when the data is absent.
"""

import lzma
import re
import unittest

from helpers import (DEMO_POLICY, MONDAY_AFTER_SCHOOL, MONDAY_LESSON, HavenTestCase, check,
                     compile_db, data_dir, describe, notice, parse_summary, require_data,
                     run_haven)

# UT1 list -> haven category (src/catdb/taxonomy.c); checked against `haven lists categories`.
UT1_CATEGORY = {
    "gambling": "gambling",
    "drogue": "drugs",
    "adult": "pornography",
    "agressif": "hate",
    "dating": "dating",
    "redirector": "filter-bypass",
    "phishing": "malware",
    "malware": "malware",
    "games": "games",
    "dynamic-dns": "dynamic-dns",
}

# Reference and help sites the demo policy allows whatever their category.
DEMO_ALLOWED = ("wikipedia.org", "wikimedia.org", "britannica.com", "bbc.co.uk",
                "dictionary.cambridge.org", "oed.com", "childline.org.uk", "nhs.uk",
                "talktofrank.com", "gamcare.org.uk")

IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
NAME = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)+$")


def xz_lines(path):
    with lzma.open(path, "rt", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            line = line.strip()
            if line:
                yield line


def allowed_by_demo(host):
    return any(host == d or host.endswith("." + d) for d in DEMO_ALLOWED)


def first_domain(path):
    """The first plain host name of a domains file (no IP, no leading dot, not demo-allowed)."""
    for line in xz_lines(path):
        if NAME.match(line) and not IPV4.match(line) and not allowed_by_demo(line):
            return line
    raise AssertionError("no host name in %s" % path)


def first_url(path):
    """The first host/path entry of a urls file with a host name and a path."""
    for line in xz_lines(path):
        host, slash, rest = line.partition("/")
        if (slash and rest.strip("/") and NAME.match(host) and not IPV4.match(host)
                and not allowed_by_demo(host) and "?" not in line and "%" not in line):
            return line.rstrip("/")
    raise AssertionError("no URL in %s" % path)


def first_ipv4(path):
    for line in xz_lines(path):
        if IPV4.match(line):
            return line
    return None


class TestUT1(HavenTestCase):

    @classmethod
    def setUpClass(cls):
        cls.ut1 = require_data(cls, "ut1")
        cls.adult = require_data(cls, "adult-top1m", "domains.xz")
        cls.dir = cls.class_tmp()
        cls.db = cls.dir / "ut1.cdb"
        cls.rejects = cls.dir / "rejects.txt"
        cls.proc = compile_db(cls.db, ["--list", "pornography=%s" % cls.adult],
                              ut1=cls.ut1, rejects=cls.rejects)
        cls.summary = parse_summary(cls.proc.stdout)
        # known entries, picked from the files
        cls.domains = {}  # entry -> category
        for ut1_name in ("gambling", "drogue", "agressif", "dating", "redirector", "phishing",
                         "games"):
            cls.domains[first_domain(cls.ut1 / ut1_name / "domains.xz")] = UT1_CATEGORY[ut1_name]
        cls.domains[first_domain(cls.adult)] = "pornography"
        cls.urls = {}
        for ut1_name in ("drogue", "adult", "dating", "redirector"):
            cls.urls[first_url(cls.ut1 / ut1_name / "urls.xz")] = UT1_CATEGORY[ut1_name]

    def test_summary(self):
        s = self.summary
        # "0 or few" rejected lines: the data is clean (SOURCE.md); allow a handful per million
        self.assertLessEqual(s["rejected"], 50, self.proc.stdout)
        rejected = self.rejects.read_text(errors="replace").splitlines()
        self.assertEqual(len(rejected), s["rejected"])
        self.assertGreater(s["accepted"], 1_000_000)
        self.assertGreater(s["distinct"], 500_000)
        self.assertEqual(s["lists"], len([d for d in self.ut1.iterdir()
                                          if d.is_dir() and not d.is_symlink()]) + 1)

    def test_every_line_accounted_for(self):
        lines = 0
        for d in self.ut1.iterdir():
            if not d.is_dir() or d.is_symlink():
                continue
            for name in ("domains", "urls"):
                for ext in ("", ".xz", ".gz", ".bz2"):
                    f = d / (name + ext)
                    if f.is_file():
                        if ext == ".xz":
                            lines += sum(1 for _ in xz_lines(f))
                        elif ext == "":
                            lines += sum(1 for l in f.read_text(errors="replace").splitlines()
                                         if l.strip())
                        else:
                            self.skipTest("unexpected %s in the data" % f)
                        break
        lines += sum(1 for _ in xz_lines(self.adult))
        s = self.summary
        self.assertEqual(s["accepted"] + s["rejected"], lines, self.proc.stdout)

    def test_category_names_are_havens(self):
        p = run_haven(["lists", "categories"])
        names = {l.split()[0] for l in p.stdout.splitlines() if l.strip()}
        for c in set(UT1_CATEGORY.values()):
            self.assertIn(c, names)
        info = run_haven(["lists", "info", "--db", self.db])
        self.assertEqual(info.returncode, 0, describe(info))
        self.assertRegex(info.stdout, r"(?m)^\s+ut1/adult\s+pornography\s+\d+$")
        self.assertRegex(info.stdout, r"(?m)^\s+ut1/drogue\s+drugs\s+\d+$")
        # CC BY-SA attribution travels with the database
        self.assertIn("UT1", info.stdout)
        self.assertIn("CC BY-SA", info.stdout)

    def assertBlocked(self, urls, category, group="secondary", at=MONDAY_LESSON):
        for o in check(urls, self.db, group=group, at=at):
            with self.subTest(url=o["url"], group=group):
                self.assertVerdict(o, "block", category)

    def test_known_domains_blocked_for_secondary(self):
        for entry, category in self.domains.items():
            self.assertBlocked([entry, "http://%s/" % entry], category)

    def test_known_domains_reason_names_the_list(self):
        objs = check(list(self.domains), self.db, group="secondary", at=MONDAY_LESSON)
        for o in objs:
            with self.subTest(url=o["url"]):
                listed = ("adult-top1m/domains.xz" if self.domains[o["url"]] == "pornography"
                          else "ut1/")
                self.assertIn("(list %s" % listed, o["reason"])
                self.assertIn("secondary group", o["reason"])

    def test_known_urls_blocked_for_secondary(self):
        for entry, category in self.urls.items():
            self.assertBlocked([entry, "http://%s" % entry, "https://%s/more/below?x=1" % entry],
                               category)

    def test_evasion_forms_of_known_domains(self):
        for entry, category in self.domains.items():
            forms = ["http://www.%s/" % entry,
                     "http://%s./" % entry,
                     "http://%s:80/" % entry,
                     "https://%s:443/" % entry,
                     "http://%s/" % entry.upper(),
                     "HTTP://WWW.%s.:80/Index.HTML" % entry.upper(),
                     "http://sub.domain.%s/" % entry,
                     "http://user:pw@%s/" % entry]
            self.assertBlocked(forms, category)

    def test_evasion_forms_of_known_urls(self):
        for entry, category in self.urls.items():
            host, _, path = entry.partition("/")
            forms = ["http://www.%s/%s" % (host, path),
                     "http://%s./%s" % (host, path),
                     "http://%s:80/%s" % (host, path),
                     "http://%s/%s" % (host.upper(), path),
                     "http://sub.%s/%s/" % (host, path),
                     "http://%s/./%s" % (host, path),
                     "http://%s/x/../%s" % (host, path)]
            self.assertBlocked(forms, category)

    def test_url_entry_does_not_block_the_rest_of_the_site(self):
        for entry, category in self.urls.items():
            host = entry.partition("/")[0]
            root, other = check(["http://%s/" % host, "http://%s/zz9-not-listed" % host],
                                self.db, group="staff", at=MONDAY_LESSON)
            with self.subTest(url=entry):
                if category in root["categories"]:
                    continue  # the host itself is listed too
                self.assertNotIn(category, other["categories"])

    def test_games_follow_the_lesson_schedule(self):
        entry = next(e for e, c in self.domains.items() if c == "games")
        o = check([entry], self.db, group="secondary", at=MONDAY_AFTER_SCHOOL)[0]
        if o["categories"] == ["games"]:
            self.assertVerdict(o, "allow", "games")
        self.assertBlocked([entry], "games", at=MONDAY_LESSON)

    def test_dot_prefixed_entries(self):
        # SOURCE.md: dynamic-dns/domains has ".afshin.ir" and ".giswebservice.com"
        dots = [l for l in xz_lines(self.ut1 / "dynamic-dns" / "domains.xz") if l.startswith(".")]
        if not dots:
            self.skipTest("no dot-prefixed entries in this data")
        for d in dots:
            self.assertBlocked([d[1:], "x." + d[1:]], "dynamic-dns")

    def test_ipv4_entries(self):
        ip = first_ipv4(self.ut1 / "gambling" / "domains.xz")
        if not ip:
            self.skipTest("no IPv4 entry in gambling/domains")
        a, b, c, d = map(int, ip.split("."))
        as_int = (a << 24) | (b << 16) | (c << 8) | d
        forms = ["http://%s/" % ip, "http://%d/" % as_int, "http://0x%08x/" % as_int]
        # staff: no block-ip-hosts, so the list entry itself must match
        self.assertBlocked(forms, "gambling", group="staff")

    def test_blocked_for_every_student_group(self):
        porn = next(e for e, c in self.domains.items() if c == "pornography")
        for group in ("primary", "secondary", "sixth-form", "staff", "guests"):
            self.assertBlocked([porn], "pornography", group=group, at=MONDAY_AFTER_SCHOOL)

    def test_popular_sites_allowed(self):
        top = data_dir() / "top-sites" / "majestic_million-top15000.csv.xz"
        names = ["google.com", "wikipedia.org", "bbc.co.uk"]
        if top.exists():
            ranked = {l.split(",")[2] for l in list(xz_lines(top))[1:200]}
            for n in names:
                self.assertIn(n, ranked)
        else:
            notice("%s not found: checking popular sites without the ranking" % top)
        urls = []
        for n in names:
            urls += [n, "https://www.%s/" % n]
        urls += ["https://en.wikipedia.org/wiki/Drug", "https://www.bbc.co.uk/bitesize",
                 "https://www.google.com/search?q=homework"]
        for at in (MONDAY_LESSON, MONDAY_AFTER_SCHOOL):
            for o in check(urls, self.db, group="secondary", at=at):
                with self.subTest(url=o["url"], at=at):
                    self.assertVerdict(o, "allow")

    def test_squid_helper_with_the_real_database(self):
        porn = next(e for e, c in self.domains.items() if c == "pornography")
        gambling = next(e for e, c in self.domains.items() if c == "gambling")
        lines = ("1 http://%s/ 10.0.0.1/- - GET\n"
                 "2 %s:443 10.0.0.1/- - CONNECT\n"
                 "3 https://www.google.com/ 10.0.0.1/- - GET\n" % (porn, gambling))
        p = run_haven(["squid-helper", "--db", self.db, "--policy", DEMO_POLICY], input=lines)
        self.assertEqual(p.returncode, 0, describe(p))
        answers = p.stdout.splitlines()
        self.assertEqual(len(answers), 3, describe(p))
        self.assertTrue(answers[0].startswith("1 OK status=302 "), answers[0])
        self.assertIn("category=pornography", answers[0])
        self.assertTrue(answers[1].startswith("2 OK status=302 "), answers[1])
        self.assertIn("category=gambling", answers[1])
        self.assertEqual(answers[2], "3 ERR")


if __name__ == "__main__":
    unittest.main()
