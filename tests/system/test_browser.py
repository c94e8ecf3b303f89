"""A real browser through `haven serve`: headless Chromium renders the block page.

Skipped with a notice when /usr/bin/chromium is absent (apt-get install -y chromium). The
screenshot is kept in build/artifacts/block-page.png for a person to look at.
"""

import os
import struct
import subprocess
import tempfile
import unittest

import proxyenv
from helpers import REPO, HavenTestCase, notice
from proxyenv import Haven, Origin, StubDNS, compile_lists

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "build" / "artifacts"
SCREENSHOT = ARTIFACTS / "block-page.png"
BROWSER_WAIT = 120  # a hang guard for one browser run


def png_size(path):
    """(width, height) from a PNG file's IHDR chunk; fails if it is not a PNG."""
    with open(path, "rb") as f:
        head = f.read(33)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise AssertionError("%s is not a PNG file (starts %r)" % (path, head[:16]))
    return struct.unpack(">II", head[16:24])


class TestBrowser(HavenTestCase):

    @classmethod
    def setUpClass(cls):
        if not os.access(CHROMIUM, os.X_OK):
            msg = "%s not found: skipping the browser tests (apt-get install -y chromium)" % CHROMIUM
            notice(msg)
            raise unittest.SkipTest(msg)
        cls.dir = cls.class_tmp()
        cls.db = compile_lists(cls.dir)
        cls.dns = StubDNS(proxyenv.ZONE, cls.dir)
        cls.addClassCleanup(cls.dns.stop)
        cls.origin = Origin()
        cls.addClassCleanup(cls.origin.stop)

    def setUp(self):
        super().setUp()
        self.h = Haven(self.tmp, self.db, resolver=self.dns.port)
        self.addCleanup(self.h.kill)
        self.h.start()
        self.addCleanup(self.h.stop)
        self.profile = tempfile.mkdtemp(prefix="haven-chromium-", dir=self.tmp)

    def chromium(self, *args):
        argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--user-data-dir=%s" % self.profile, "--window-size=1024,900",
                "--proxy-server=http://127.0.0.1:%d" % self.h.port] + list(args)
        p = subprocess.run(argv, capture_output=True, timeout=BROWSER_WAIT, text=True,
                           errors="replace", cwd=self.tmp)
        return p

    def blocked_url(self):
        return "http://casino.test:%d/roulette" % self.origin.port

    def test_block_page_screenshot(self):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        if SCREENSHOT.exists():
            SCREENSHOT.unlink()
        p = self.chromium("--screenshot=%s" % SCREENSHOT, self.blocked_url())
        self.assertTrue(SCREENSHOT.exists(), "no screenshot; chromium exit %s:\n%s"
                        % (p.returncode, p.stderr[-3000:]))
        size = SCREENSHOT.stat().st_size
        width, height = png_size(SCREENSHOT)
        self.assertEqual((width, height), (1024, 900))
        # A rendered page, not a blank one: a blank 1024x900 PNG is a few kilobytes.
        self.assertGreater(size, 20000, "the screenshot is suspiciously small (%d bytes)" % size)
        # The browser really asked haven, and haven blocked it.
        rec = self.h.wait_log(lambda x: "/roulette" in x["url"])
        self.assertEqual(rec["action"], "block", rec)

    def test_block_page_text_rendered(self):
        p = self.chromium("--dump-dom", self.blocked_url())
        dom = p.stdout
        self.assertIn("This page is blocked", dom, "chromium exit %s:\n%s\n%s"
                      % (p.returncode, dom[-2000:], p.stderr[-2000:]))
        self.assertIn("Hillside Test Academy", dom)
        self.assertIn("Gambling", dom)
        self.assertRegex(dom, proxyenv.REF_RE)
        self.assertIn("Request access", dom)
        self.assertIn("Report a concern", dom)


if __name__ == "__main__":
    unittest.main()
