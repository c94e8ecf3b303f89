"""Shared helpers for haven's system tests.

The tests drive the real `haven` binary as a user would. They use only Debian's
/usr/bin/python3 and its standard library, touch nothing outside a temporary
directory, and need no network beyond 127.0.0.1.

Environment:
  HAVEN_BIN   the binary to test (scripts/run-tests sets build/asan/haven);
              default: build/asan/haven, else build/dev/haven
  HAVEN_DATA  the shared list data (UT1, adult-top1m, top-sites);
              default: ../shared/data beside the repository. Tests that need it
              skip with a printed notice when it is absent.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEMO_POLICY = REPO / "demo" / "policy.conf"
DEMO_LISTS = REPO / "demo" / "lists"

# A Monday in term, in lesson time (GMT) and after school.
MONDAY_LESSON = "2026-11-30T10:00"
MONDAY_AFTER_SCHOOL = "2026-11-30T17:30"

# Every key of a verdict object and of an error object printed by `haven check --json`.
VERDICT_KEYS = {"url", "normalized", "group", "action", "categories", "rule", "reason",
                "inspect"}
ERROR_KEYS = {"url", "normalized", "error"}

# Sanitizer reports in stderr mean a memory or UB error even if the exit status looks fine.
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "SUMMARY: UndefinedBehaviorSanitizer")

_notices = set()


def haven_bin():
    """The haven binary under test, or None."""
    env = os.environ.get("HAVEN_BIN")
    if env:
        env = os.path.abspath(env)  # tests run haven from other directories too
        return env if os.access(env, os.X_OK) else None
    for preset in ("asan", "dev"):
        p = REPO / "build" / preset / "haven"
        if os.access(p, os.X_OK):
            return str(p)
    return None


def notice(text):
    """Print a notice once per run (for skips), on standard error."""
    if text not in _notices:
        _notices.add(text)
        print("NOTICE: " + text, file=sys.stderr, flush=True)


def data_dir():
    """The shared data directory ($HAVEN_DATA, default ../shared/data)."""
    return Path(os.environ.get("HAVEN_DATA") or (REPO.parent / "shared" / "data"))


def require_data(test, *parts):
    """The path $HAVEN_DATA/parts..., or skip test (a TestCase or class) with a notice."""
    p = data_dir().joinpath(*parts)
    if not p.exists():
        msg = "%s not found: skipping tests that need the shared list data (set HAVEN_DATA)" % p
        notice(msg)
        raise unittest.SkipTest(msg)
    return p


def haven_env():
    """The environment for haven: the caller's, without the defaults that would leak in."""
    env = dict(os.environ)
    env.pop("HAVEN_DB", None)
    env.pop("HAVEN_POLICY", None)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    env["LC_ALL"] = "C.UTF-8"
    return env


def assert_no_sanitizer_report(stderr, what="haven"):
    for mark in SANITIZER_MARKS:
        if mark in stderr:
            raise AssertionError("%s: sanitizer report in stderr:\n%s" % (what, stderr[-4000:]))


def run_haven(args, input=None, timeout=300, cwd=None):
    """Run haven with args (strings or Paths); return CompletedProcess (text, utf-8, surrogateescape)."""
    binary = haven_bin()
    if binary is None:
        raise AssertionError("no haven binary (set HAVEN_BIN or build with cmake --preset asan)")
    argv = [binary] + [str(a) for a in args]
    p = subprocess.run(argv, input=input, capture_output=True, timeout=timeout, cwd=cwd,
                       env=haven_env(), encoding="utf-8", errors="surrogateescape")
    assert_no_sanitizer_report(p.stderr, " ".join(argv[:3]))
    return p


def describe(p):
    """A short account of a finished process, for assertion messages."""
    return "exit %s\n--- stdout\n%s\n--- stderr\n%s" % (p.returncode, p.stdout[-3000:],
                                                         p.stderr[-3000:])


def parse_json_lines(text, count=None):
    """Parse one JSON object per line; check there are count lines if given."""
    lines = text.splitlines()
    if count is not None and len(lines) != count:
        raise AssertionError("expected %d JSON lines, got %d:\n%s" % (count, len(lines), text))
    out = []
    for line in lines:
        try:
            obj = json.loads(line)
        except ValueError as e:
            raise AssertionError("not a JSON object line (%s): %r" % (e, line))
        if not isinstance(obj, dict):
            raise AssertionError("not a JSON object: %r" % line)
        out.append(obj)
    return out


def check(urls, db, policy=DEMO_POLICY, group=None, at=None, stdin=None, extra=()):
    """`haven check --json` on urls; returns the list of objects (one per URL, checked)."""
    args = ["check", "--json", "--db", db, "--policy", policy]
    if group:
        args += ["--group", group]
    if at:
        args += ["--at", at]
    args += list(extra) + list(urls)
    p = run_haven(args, input=stdin)
    if p.returncode != 0:
        raise AssertionError("haven check failed: " + describe(p))
    expect = None if stdin is not None else len(urls)
    return parse_json_lines(p.stdout, expect)


def verdict(url, db, **kw):
    """The one verdict object for url."""
    return check([url], db, **kw)[0]


def demo_list_specs(lists_dir=DEMO_LISTS):
    """--list CATEGORY=FILE arguments for demo/lists/*.txt (category = file name)."""
    args = []
    for f in sorted(Path(lists_dir).glob("*.txt")):
        args += ["--list", "%s=%s" % (f.stem, f)]
    return args


def compile_db(out, specs=(), ut1=None, rejects=None, expect_ok=True):
    """`haven lists compile`; returns the CompletedProcess (checked if expect_ok)."""
    args = ["lists", "compile"]
    if ut1:
        args += ["--ut1", ut1]
    args += list(specs)
    if rejects:
        args += ["--rejects", rejects]
    args += ["-o", out]
    p = run_haven(args)
    if expect_ok and p.returncode != 0:
        raise AssertionError("haven lists compile failed: " + describe(p))
    return p


def compile_demo_db(directory):
    """A database compiled from demo/lists in directory; returns its path."""
    out = Path(directory) / "demo.cdb"
    compile_db(out, demo_list_specs())
    return out


def parse_summary(text):
    """Numbers from the one-line summary of `haven lists compile`.

    "entries" counts entries (a hosts line naming three hosts gives three); "lines" counts
    every line read, and lines = accepted + skipped + rejected: nothing is dropped unseen."""
    m = re.search(r": ([\d,]+) entries \(([\d,]+) distinct\) in (\d+) lists; .*?"
                  r"([\d,]+) lines read: (\d+) with entries, (\d+) blank or comments, "
                  r"(\d+) rejected;", text)
    if not m:
        raise AssertionError("no summary line in %r" % text)
    def num(s):
        return int(s.replace(",", ""))
    return {"entries": num(m.group(1)), "distinct": num(m.group(2)), "lists": int(m.group(3)),
            "lines": num(m.group(4)), "accepted": num(m.group(5)), "skipped": num(m.group(6)),
            "rejected": num(m.group(7))}


def write(path, text, mode="w"):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if "b" in mode:
        with open(path, mode) as f:
            f.write(text)
    else:
        with open(path, mode, encoding="utf-8", newline="") as f:
            f.write(text)
    return path


class HavenTestCase(unittest.TestCase):
    """A test case with a fresh temporary directory (self.tmp, a Path) per test."""

    maxDiff = 4000

    def setUp(self):
        if haven_bin() is None:
            self.fail("no haven binary (set HAVEN_BIN or build with cmake --preset asan)")
        self.tmp = Path(tempfile.mkdtemp(prefix="haven-systest-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)

    @classmethod
    def class_tmp(cls):
        """A temporary directory for the whole class, removed after it."""
        d = Path(tempfile.mkdtemp(prefix="haven-systest-"))
        cls.addClassCleanup(shutil.rmtree, d, True)
        return d

    def assertVerdict(self, obj, action, category=None, msg=None):
        """obj is a full verdict object with this action (and category among its categories)."""
        self.assertEqual(set(obj), VERDICT_KEYS, "keys of %r" % obj)
        self.assertEqual(obj["action"], action, msg or obj)
        if category is not None:
            self.assertIn(category, obj["categories"], msg or obj)
