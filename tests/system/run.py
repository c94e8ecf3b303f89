#!/usr/bin/python3
"""Run haven's system tests: tests/system/test_*.py under unittest.

Prints one line per test and, last, exactly
    system: N passed, M failed, K skipped
(scripts/run-tests parses it). Exits non-zero if any test failed or errored.

    HAVEN_BIN=build/asan/haven /usr/bin/python3 tests/system/run.py [PATTERN...]

A PATTERN keeps only tests whose id contains it (e.g. test_squid, TestCheck.test_json).
"""

import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import helpers  # noqa: E402


class Result(unittest.TestResult):
    """Prints one line per test as it finishes."""

    def __init__(self, stream):
        super().__init__()
        self.stream = stream
        self.passed = 0
        self.failed_ids = set()  # tests with a failure, error or failing subtest

    def _line(self, status, test, extra=""):
        self.stream.write("%-5s %s%s\n" % (status, test.id(), extra))
        self.stream.flush()

    def addSuccess(self, test):
        super().addSuccess(test)
        if test.id() in self.failed_ids:  # a subtest failed
            self._line("FAIL", test)
            return
        self.passed += 1
        self._line("ok", test)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.failed_ids.add(test.id())
        self._line("FAIL", test)

    def addError(self, test, err):
        super().addError(test, err)
        self.failed_ids.add(test.id())
        self._line("ERROR", test)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._line("skip", test, " (%s)" % reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self.passed += 1
        self._line("ok", test, " (expected failure)")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self.failed_ids.add(test.id())
        self._line("FAIL", test, " (unexpected success)")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            first = test.id() not in self.failed_ids
            self.failed_ids.add(test.id())
            if first:
                self._line("FAIL", test)


def flatten(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from flatten(t)
        else:
            yield t


def main(argv):
    out = sys.stdout
    if helpers.haven_bin() is None:
        out.write("haven binary not found (set HAVEN_BIN, or build: cmake --preset asan && "
                  "cmake --build --preset asan)\n")
        out.write("system: 0 passed, 1 failed, 0 skipped\n")
        return 1
    out.write("binary: %s\n" % helpers.haven_bin())
    loader = unittest.TestLoader()
    suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    patterns = argv[1:]
    if patterns:
        keep = [t for t in flatten(suite) if any(p in t.id() for p in patterns)]
        suite = unittest.TestSuite(keep)
    result = Result(out)
    start = time.monotonic()
    suite.run(result)
    elapsed = time.monotonic() - start

    for kind, items in (("FAIL", result.failures), ("ERROR", result.errors)):
        for test, tb in items:
            out.write("\n" + "=" * 70 + "\n%s: %s\n" % (kind, test.id()) + "-" * 70 + "\n")
            out.write(tb)
    failed = len(result.failed_ids)
    skipped = len(result.skipped)
    out.write("\n(%d tests in %.1fs)\n" % (result.testsRun, elapsed))
    out.write("system: %d passed, %d failed, %d skipped\n" % (result.passed, failed, skipped))
    out.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
