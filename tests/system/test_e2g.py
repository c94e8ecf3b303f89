"""`haven monitor import-e2g`: E2Guardian weighted phrase lists as keyword libraries.

A list written here is imported, checked for what a user sees (the summary, the
warnings as FILE:LINE, the header of the library) and then used with
`haven monitor check --library-dir` to see that a high-weight phrase alerts.
Every weighted list of a real E2Guardian installation (/etc/e2guardian) is
imported too and must load; without one, that test skips with a notice.
"""

import glob
import json
import os

from helpers import HavenTestCase, describe, notice, run_haven

E2G_LISTS = "/etc/e2guardian/lists/phraselists"


class TestImportE2g(HavenTestCase):

    def write(self, name, data):
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
        return path

    def imp(self, *args, expect=0):
        p = run_haven(["monitor", "import-e2g", *args])
        self.assertEqual(p.returncode, expect, describe(p))
        return p

    def check(self, libdir, *texts):
        p = run_haven(["monitor", "check", "--library-dir", libdir, "--json", *texts])
        self.assertEqual(p.returncode, 0, describe(p))
        return [json.loads(line) for line in p.stdout.splitlines()]

    def test_import_and_alert(self):
        lst = self.write("drugs/weighted", (
            '#listcategory: "Illegal Drugs"\n'
            "< buy skunk ><150>\n"
            "<mephedrone><60>\n"
            "< pills >,< overdose ><100>\n"
            "< drugs education ><-40>\n"
            "< ganja ><40\n"
            ".Include<more>\n"))
        self.write("drugs/more", "< crack pipe ><80>\n")
        libdir = self.tmp / "libs"
        libdir.mkdir()
        out = libdir / "e2g.lib"
        p = self.imp("--theme", "drugs", lst, "-o", out)
        self.assertIn("4 phrases in theme drugs", p.stdout)
        self.assertIn("%s:6: unterminated '<'" % lst, p.stderr)
        self.assertIn("1 warning", p.stderr)
        text = out.read_text()
        self.assertIn('"Illegal Drugs"', text)
        self.assertIn("(included at %s:7)" % lst, text)
        self.assertIn("%s:5: < drugs education ><-40>" % lst, text)  # good phrase listed
        self.assertIn('phrase "buy skunk" 4', text)
        self.assertIn('phrase "mephedrone*" 3', text)

        r = self.check(libdir, "where can i buy skunk", "mephedrone prices",
                       "i took the pills", "took the pills then an overdose", "a crack pipe",
                       "drugs education lesson")
        self.assertTrue(r[0]["alert"], r[0])
        self.assertEqual(r[0]["severity"], 4)
        self.assertEqual(r[0]["matches"][0]["theme"], "drugs")
        self.assertTrue(r[1]["alert"], r[1])
        self.assertFalse(r[2]["alert"], r[2])  # the anchor alone is severity 1
        self.assertTrue(r[3]["alert"], r[3])   # raised by its context word
        self.assertTrue(r[4]["alert"], r[4])
        self.assertFalse(r[5]["alert"], r[5])

    def test_latin1(self):
        lst = self.write("weighted_pt", b"< coca\xedna ><120>\n")
        libdir = self.tmp / "libs"
        libdir.mkdir()
        self.imp("--theme", "drugs", "--language", "pt", lst, "-o", libdir / "pt.lib")
        self.assertIn("(read as Latin-1)", (libdir / "pt.lib").read_text())
        r = self.check(libdir, "onde comprar cocaína")
        self.assertTrue(r[0]["alert"], r[0])
        p = self.imp("--theme", "drugs", "--encoding", "utf8", lst, "-o", self.tmp / "x.lib",
                     expect=1)
        self.assertIn("%s:1: not valid UTF-8" % lst, p.stderr)
        self.assertIn("nothing to import", p.stderr)

    def test_errors(self):
        lst = self.write("w", "< a ><50>\n.Include<w>\n")
        p = self.imp("--theme", "drugs", lst, "-o", self.tmp / "o.lib", expect=1)
        self.assertIn("%s:2: .Include<" % lst, p.stderr)
        self.assertIn("makes a loop", p.stderr)
        self.assertFalse((self.tmp / "o.lib").exists())
        p = self.imp("--theme", "drugs", self.tmp / "absent", "-o", self.tmp / "o.lib",
                     expect=1)
        self.assertIn("absent: cannot read: No such file", p.stderr)
        p = self.imp("--theme", "drugz", lst, "-o", self.tmp / "o.lib", expect=2)
        self.assertIn("unknown theme 'drugz' (did you mean 'drugs'?)", p.stderr)
        p = self.imp("--theme", "drugs", "--language", "xx", lst, "-o", self.tmp / "o.lib",
                     expect=2)
        self.assertIn("unknown language 'xx'", p.stderr)
        p = self.imp("--theme", "drugs", "--encoding", "ebcdic", lst, "-o", "o.lib", expect=2)
        self.assertIn("--encoding must be latin1 or utf8", p.stderr)
        p = self.imp("--theme", "drugs", lst, expect=2)
        self.assertIn("needs -o", p.stderr)
        p = self.imp("--theme", "drugs", "-o", self.tmp / "o.lib", expect=2)
        self.assertIn("at least one list FILE", p.stderr)

    def test_real_lists(self):
        lists = sorted(glob.glob(os.path.join(E2G_LISTS, "*", "weighted*")))
        if not lists:
            notice("skipped: no E2Guardian phrase lists in %s" % E2G_LISTS)
            self.skipTest("no E2Guardian lists")
        imported = 0
        for i, lst in enumerate(lists):
            with self.subTest(list=lst):
                libdir = self.tmp / ("lib%d" % i)
                libdir.mkdir()
                p = run_haven(["monitor", "import-e2g", "--theme", "pornography", lst,
                               "-o", libdir / "e2g.lib"])
                if p.returncode == 1 and "nothing to import" in p.stderr:
                    continue  # a list of good phrases only
                self.assertEqual(p.returncode, 0, describe(p))
                for line in p.stderr.splitlines():
                    if not line.startswith("haven: "):
                        self.assertRegex(line, r"^%s:\d+: " % lst)
                c = run_haven(["monitor", "check", "--library-dir", libdir, "hello"])
                self.assertEqual(c.returncode, 0, describe(c))
                imported += 1
        self.assertGreater(imported, len(lists) // 2)
        # the top list, with its .Include lines, and one of its high-weight phrases
        top = "/etc/e2guardian/lists/weightedphraselist"
        libdir = self.tmp / "top"
        libdir.mkdir()
        self.imp("--theme", "pornography", top, "-o", libdir / "e2g.lib")
        r = self.check(libdir, "free porn videos")
        self.assertTrue(r[0]["alert"], r[0])
        self.assertEqual(r[0]["matches"][0]["theme"], "pornography")
