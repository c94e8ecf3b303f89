"""`haven monitor check` and the keyword libraries, measured on the labelled evaluation set.

tests/data/monitor/ holds sentences and searches written for this project, each labelled
with the theme a DSL would want an alert for, or '-' for none (README.md there).
dev.tsv is what the library authors tuned against; holdout.tsv was written at the same
time by someone who did not see the libraries, and the authors never read it. The test
prints recall and the false-alert rate for both, per language (holdout without its texts),
and asserts the project's goals (recall >= 95%, false alerts <= 2%) on dev and floors on
holdout.
"""

import json
import os
import unittest

from helpers import HavenTestCase, describe, haven_bin, notice, run_haven

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
EVAL = os.path.join(ROOT, "tests", "data", "monitor")
LIBS = os.path.join(ROOT, "monitor")

# The goals of issue 5 hold on dev. On the held-out set, which the libraries were not
# written against, keyword matching reaches about 56% recall with no false alert
# (docs/BENCHMARKS.md): the floors below guard against a library change making it worse.
DEV_RECALL, DEV_FALSE = 0.95, 0.02
HOLDOUT_RECALL, HOLDOUT_FALSE = 0.50, 0.03


def load(name):
    items = []
    with open(os.path.join(EVAL, name), encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            lang, expect, text = line.split("\t")
            items.append((lang, expect, text))
    return items


def check(texts, extra=()):
    p = run_haven(["monitor", "check", "--library-dir", LIBS, "--json", *extra],
                  input="\n".join(texts) + "\n")
    if p.returncode != 0:
        raise AssertionError(describe(p))
    out = [json.loads(line) for line in p.stdout.splitlines()]
    if len(out) != len(texts):
        raise AssertionError("%d answers for %d lines" % (len(out), len(texts)))
    return out


def score(items):
    """(recall, false-alert rate, per-language table, misses, false alerts)."""
    answers = check([t for _, _, t in items])
    per = {}
    misses, falses = [], []
    for (lang, expect, text), a in zip(items, answers):
        row = per.setdefault(lang, [0, 0, 0, 0])  # positives, hits, benign, false alerts
        if expect == "-":
            row[2] += 1
            if a["alert"]:
                row[3] += 1
                falses.append((lang, text, a["matches"][0]["phrase"]))
        else:
            row[0] += 1
            themes = {m["theme"] for m in a["matches"] if m["severity"] >= 3}
            if a["alert"] and expect in themes:
                row[1] += 1
            else:
                misses.append((lang, expect, text))
    pos = sum(r[0] for r in per.values())
    neg = sum(r[2] for r in per.values())
    recall = sum(r[1] for r in per.values()) / pos
    false = sum(r[3] for r in per.values()) / neg
    return recall, false, per, misses, falses


def report(name, recall, false, per, misses, falses, texts=True):
    """Print the numbers; the texts missed only when texts (never for the held-out set,
    whose items library authors must not see)."""
    lines = ["%s: recall %.1f%%, false alerts %.1f%%" % (name, 100 * recall, 100 * false)]
    for lang in sorted(per):
        p, h, n, f = per[lang]
        lines.append("  %s: recall %d/%d, false alerts %d/%d" % (lang, h, p, f, n))
    for m in misses[:20] if texts else ():
        lines.append("  missed [%s %s] %s" % m)
    for m in falses[:20] if texts else ():
        lines.append("  false alert [%s] %s (%s)" % m)
    notice("\n".join(lines))


@unittest.skipUnless(haven_bin(), "no haven binary")
class TestMonitorCheck(HavenTestCase):
    def test_json_shape_and_verdicts(self):
        a, b, c = check(["i want to k1ll myself", "how to cut a mango", "i cut myself again"])
        self.assertEqual(a["text"], "i want to k1ll myself")
        self.assertTrue(a["alert"])
        self.assertEqual(a["severity"], 5)
        m = a["matches"][0]
        self.assertEqual(m["theme"], "suicide")
        self.assertEqual(m["area"], "content")
        self.assertEqual(m["lang"], "en")
        self.assertEqual(m["excerpt"], "i want to k1ll myself")
        self.assertFalse(b["alert"])
        self.assertTrue(c["alert"])
        self.assertEqual(c["matches"][0]["theme"], "self-harm")

    def test_arguments_and_plain_output(self):
        p = run_haven(["monitor", "check", "--library-dir", LIBS, "kill myself", "kill time"])
        self.assertEqual(p.returncode, 0, describe(p))
        lines = p.stdout.splitlines()
        self.assertTrue(lines[0].startswith("ALERT"), p.stdout)
        self.assertIn("suicide", lines[1])
        self.assertTrue(lines[2].startswith("ok"), p.stdout)

    def test_bad_library_named_with_line(self):
        d = str(self.tmp)
        with open(os.path.join(d, "xx.lib"), "w") as f:
            f.write("language en\ntheme suicde {\n    phrase \"x y\"\n}\n")
        p = run_haven(["monitor", "check", "--library-dir", d, "text"])
        self.assertEqual(p.returncode, 1)
        self.assertIn("xx.lib:2: unknown theme 'suicde' (did you mean 'suicide'?)", p.stderr)
        p = run_haven(["monitor", "check", "--library-dir", os.path.join(d, "none"), "text"])
        self.assertEqual(p.returncode, 1)
        self.assertIn("cannot open the keyword library directory", p.stderr)
        p = run_haven(["monitor", "frobnicate"])
        self.assertEqual(p.returncode, 2)

    def test_evaluation_set(self):
        dev = score(load("dev.tsv"))
        report("dev.tsv", *dev)
        hold = score(load("holdout.tsv"))
        report("holdout.tsv", *hold, texts=False)
        self.assertGreaterEqual(dev[0], DEV_RECALL)
        self.assertLessEqual(dev[1], DEV_FALSE)
        self.assertGreaterEqual(hold[0], HOLDOUT_RECALL)
        self.assertLessEqual(hold[1], HOLDOUT_FALSE)


if __name__ == "__main__":
    unittest.main()
