"""`haven ca`: the HTTPS inspection CA from the command line (docs/tls-inspection.md).

`haven ca init` makes the CA, `export` and `show` read its certificate, and `mint` asks a
signer process for a leaf exactly as the proxy will. The certificates are checked with the
tools a technician would use (openssl), with a real TLS handshake (Python's ssl module), and
with headless Chromium trusting the CA through an NSS database, as on a managed Linux desktop.
"""

import http.server
import os
import re
import shutil
import socket
import ssl
import stat
import subprocess
import tempfile
import threading
import unittest

from helpers import HavenTestCase, describe, haven_bin, haven_env, notice, run_haven

OPENSSL = shutil.which("openssl")
CHROMIUM = "/usr/bin/chromium"
CERTUTIL = shutil.which("certutil")
BROWSER_WAIT = 120  # a hang guard for one browser run

_supported = None


def ca_supported():
    """Whether this haven binary has the ca command yet."""
    global _supported
    if _supported is None:
        p = run_haven(["ca", "--help"]) if haven_bin() else None
        _supported = p is not None and p.returncode == 0
        if not _supported:
            notice("this haven has no `ca` command yet: skipping tests/system/test_ca.py")
    return _supported


def openssl(*args, input=None, check=True):
    p = subprocess.run([OPENSSL] + [str(a) for a in args], input=input, capture_output=True,
                       timeout=60)
    if check and p.returncode != 0:
        raise AssertionError("openssl %s failed: %s" % (" ".join(map(str, args)),
                                                         p.stderr.decode(errors="replace")))
    return p


def fingerprint(pem_path):
    """The SHA-256 fingerprint openssl prints for a certificate, as AB:CD:..."""
    out = openssl("x509", "-in", pem_path, "-noout", "-fingerprint", "-sha256").stdout.decode()
    return out.strip().split("=", 1)[1]


class TLSServer:
    """An HTTPS server on 127.0.0.1 with the given certificate and key, in a thread."""

    def __init__(self, cert, key):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert), str(key))

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = b"<html><body><p id=ok>inspected hello</p></body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class CaTestCase(HavenTestCase):
    def setUp(self):
        super().setUp()
        if not ca_supported():
            self.skipTest("haven has no ca command")
        if OPENSSL is None:
            self.skipTest("no openssl command (apt-get install openssl)")
        self.dir = self.tmp / "ca"
        self.ca = self.dir / "ca.pem"

    def haven(self, *args, expect=0):
        p = run_haven(list(args))
        if expect is not None and p.returncode != expect:
            self.fail("haven %s: expected exit %d, %s" % (" ".join(map(str, args)), expect,
                                                           describe(p)))
        return p

    def init(self, *extra, expect=0):
        return self.haven("ca", "init", "--dir", self.dir, *extra, expect=expect)

    def mint(self, host, *extra):
        cert, key = self.tmp / ("%s.pem" % host.replace(":", "_")), self.tmp / "leaf.key"
        self.haven("ca", "mint", host, "--dir", self.dir, "-o", cert, "--key-out", key, *extra)
        return cert, key


class TestCaInit(CaTestCase):
    def test_init_writes_the_ca(self):
        p = self.init("--name", "Hillside Primary")
        key, pem, der = self.dir / "ca.key", self.dir / "ca.pem", self.dir / "ca.der"
        for f in (key, pem, der):
            self.assertIn(str(f), p.stdout)
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(pem).st_mode), 0o644)
        self.assertEqual(stat.S_IMODE(os.stat(self.dir).st_mode), 0o700)
        self.assertEqual(sorted(os.listdir(self.dir)), ["ca.der", "ca.key", "ca.pem"])
        # The fingerprint printed is the one openssl sees.
        m = re.search(r"SHA-256 fingerprint ([0-9A-F:]{95})", p.stdout)
        self.assertIsNotNone(m, p.stdout)
        self.assertEqual(m.group(1), fingerprint(pem))

        text = openssl("x509", "-in", pem, "-noout", "-text").stdout.decode()
        self.assertRegex(text, r"Subject: O = Hillside Primary, CN = Hillside Primary haven "
                               r"inspection CA")
        self.assertRegex(text, r"Issuer: O = Hillside Primary, CN = Hillside Primary haven")
        self.assertRegex(text, r"X509v3 Basic Constraints: critical\s+CA:TRUE, pathlen:0")
        self.assertRegex(text, r"X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign")
        self.assertIn("X509v3 Subject Key Identifier", text)
        self.assertIn("Signature Algorithm: ecdsa-with-SHA256", text)
        self.assertIn("NIST CURVE: P-256", text)
        # The key is unencrypted PKCS#8 and is the certificate's.
        with open(key) as f:
            self.assertEqual(f.readline().strip(), "-----BEGIN PRIVATE KEY-----")
        pub_of_key = openssl("pkey", "-in", key, "-pubout").stdout
        pub_of_cert = openssl("x509", "-in", pem, "-noout", "-pubkey").stdout
        self.assertEqual(pub_of_key, pub_of_cert)
        # ca.der is ca.pem in DER.
        der_of_pem = openssl("x509", "-in", pem, "-outform", "DER").stdout
        self.assertEqual(der_of_pem, der.read_bytes())
        # It verifies as its own root, and openssl agrees it is a CA.
        self.assertIn(b"OK", openssl("verify", "-CAfile", pem, pem).stdout)

    def test_refuses_to_overwrite(self):
        self.init()
        before = {f: (self.dir / f).read_bytes() for f in ("ca.key", "ca.pem", "ca.der")}
        p = self.init("--name", "Another", expect=1)
        self.assertIn("already holds a CA", p.stderr)
        self.assertIn("--force", p.stderr)
        after = {f: (self.dir / f).read_bytes() for f in ("ca.key", "ca.pem", "ca.der")}
        self.assertEqual(before, after)
        # --force replaces it: a new key and a new certificate.
        self.init("--name", "Another", "--force")
        self.assertNotEqual(before["ca.key"], (self.dir / "ca.key").read_bytes())
        self.assertNotEqual(before["ca.pem"], (self.dir / "ca.pem").read_bytes())
        self.assertEqual(stat.S_IMODE(os.stat(self.dir / "ca.key").st_mode), 0o600)

    def test_rsa(self):
        self.init("--rsa")
        text = openssl("x509", "-in", self.dir / "ca.pem", "-noout", "-text").stdout.decode()
        self.assertIn("rsaEncryption", text)
        self.assertIn("(3072 bit)", text)
        self.assertIn("sha256WithRSAEncryption", text)
        cert, _ = self.mint("rsa-ca.example")
        self.assertIn(b"OK", openssl("verify", "-CAfile", self.dir / "ca.pem", "-purpose",
                                     "sslserver", cert).stdout)

    def test_bad_name(self):
        p = self.init("--name", "x" * 41, expect=1)
        self.assertIn("1 to 40 bytes", p.stderr)
        self.assertFalse((self.dir / "ca.key").exists())

    def test_default_dir_from_environment(self):
        env = haven_env()
        env["HAVEN_CA_DIR"] = str(self.dir)
        p = subprocess.run([haven_bin(), "ca", "init"], capture_output=True, text=True, env=env,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue((self.dir / "ca.key").exists())
        p = subprocess.run([haven_bin(), "ca", "show"], capture_output=True, text=True, env=env,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("School haven inspection CA", p.stdout)

    def test_usage_errors(self):
        for args in (["ca"], ["ca", "frob"], ["ca", "init", "--bogus"], ["ca", "mint"],
                     ["ca", "show", "extra"], ["ca", "init", "--der"], ["ca", "export", "--dir"],
                     ["ca", "mint", "a b.example", "--dir", str(self.dir)]):
            p = run_haven(args)
            self.assertEqual(p.returncode, 2, "%s: %s" % (args, describe(p)))
            self.assertIn("usage: haven ca", p.stderr, args)
        p = run_haven(["ca", "--help"])
        self.assertEqual(p.returncode, 0)
        self.assertIn("haven ca init", p.stdout)


class TestCaExportShow(CaTestCase):
    def test_export(self):
        self.init()
        p = self.haven("ca", "export", "--dir", self.dir)
        self.assertEqual(p.stdout, (self.dir / "ca.pem").read_text())
        out = self.tmp / "exported.der"
        self.haven("ca", "export", "--dir", self.dir, "--der", "-o", out)
        self.assertEqual(out.read_bytes(), (self.dir / "ca.der").read_bytes())
        out = self.tmp / "exported.pem"
        self.haven("ca", "export", "--dir", self.dir, "--output", out)
        self.assertEqual(out.read_text(), (self.dir / "ca.pem").read_text())
        # DER on a pipe is fine too.
        p = subprocess.run([haven_bin(), "ca", "export", "--dir", str(self.dir), "--der"],
                           capture_output=True, env=haven_env(), timeout=60)
        self.assertEqual(p.returncode, 0)
        self.assertEqual(p.stdout, (self.dir / "ca.der").read_bytes())

    def test_export_without_ca(self):
        p = self.haven("ca", "export", "--dir", self.dir, expect=1)
        self.assertIn("ca.pem", p.stderr)
        self.assertIn("haven ca init", p.stderr)

    def test_show(self):
        init = self.init("--name", "Hillside Primary")
        fp = re.search(r"SHA-256 fingerprint (\S+)", init.stdout).group(1)
        p = self.haven("ca", "show", "--dir", self.dir)
        self.assertIn("subject      O = Hillside Primary, CN = Hillside Primary haven inspection "
                      "CA", p.stdout)
        self.assertIn("key          EC P-256", p.stdout)
        self.assertIn("SHA-256 fingerprint " + fp, p.stdout)
        self.assertRegex(p.stdout, r"valid from   \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC")
        self.assertRegex(p.stdout, r"valid until  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC  "
                                   r"\(36\d\d days from now\)")
        self.assertRegex(p.stdout, r"private key  .*ca.key  \(mode 0600\)")
        # A key others can read is pointed out.
        os.chmod(self.dir / "ca.key", 0o644)
        p = self.haven("ca", "show", "--dir", self.dir)
        self.assertIn("others can read it", p.stdout)


class TestCaMint(CaTestCase):
    def setUp(self):
        super().setUp()
        self.init("--name", "Hillside Primary")

    def verify(self, cert, *extra):
        return openssl("verify", "-CAfile", self.ca, "-purpose", "sslserver", *extra, cert,
                       check=False)

    def test_leaf_verifies(self):
        cert, key = self.mint("www.example.com")
        p = self.verify(cert, "-verify_hostname", "www.example.com")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"OK", p.stdout)
        p = self.verify(cert, "-verify_hostname", "other.example.com")
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
        self.assertEqual(openssl("pkey", "-in", key, "-pubout").stdout,
                         openssl("x509", "-in", cert, "-noout", "-pubkey").stdout)
        text = openssl("x509", "-in", cert, "-noout", "-text").stdout.decode()
        self.assertIn("Subject: O = Hillside Primary, CN = www.example.com", text)
        self.assertRegex(text, r"Subject Alternative Name: \s+DNS:www.example.com\n")
        self.assertRegex(text, r"Basic Constraints: critical\s+CA:FALSE")
        self.assertRegex(text, r"Key Usage: critical\s+Digital Signature\n")
        self.assertRegex(text, r"Extended Key Usage: \s+TLS Web Server Authentication")
        self.assertIn("Authority Key Identifier", text)

    def test_leaf_for_ip(self):
        for ip in ("127.0.0.1", "::1"):
            cert, _ = self.mint(ip)
            p = self.verify(cert, "-verify_ip", ip)
            self.assertEqual(p.returncode, 0, p.stderr)
            text = openssl("x509", "-in", cert, "-noout", "-ext", "subjectAltName").stdout
            self.assertIn(b"IP Address:", text)
            self.assertNotIn(b"DNS:", text)

    def test_tls_handshake(self):
        """A TLS client that trusts only the school CA accepts the leaf for its name."""
        cert, key = self.mint("localhost")
        server = TLSServer(cert, key)
        self.addCleanup(server.stop)
        ctx = ssl.create_default_context(cafile=str(self.ca))
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                self.assertEqual(tls.getpeercert()["subjectAltName"], (("DNS", "localhost"),))
        # ... and refuses it for another name.
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as raw:
            with self.assertRaises(ssl.SSLCertVerificationError):
                ctx.wrap_socket(raw, server_hostname="elsewhere.example")

    def test_refusals(self):
        p = self.haven("ca", "mint", "x.example", "--dir", self.tmp / "nothing", expect=1)
        self.assertIn("the certificate signer could not start", p.stderr)
        self.assertIn("ca.pem: No such file", p.stderr)
        os.chmod(self.dir / "ca.key", 0o640)
        p = self.haven("ca", "mint", "x.example", "--dir", self.dir, expect=1)
        self.assertIn("readable by others", p.stderr)


class TestChromium(CaTestCase):
    """Chromium accepts a leaf under the school CA once the CA is in its NSS database."""

    def setUp(self):
        super().setUp()
        if not os.access(CHROMIUM, os.X_OK) or CERTUTIL is None:
            msg = ("chromium or certutil not found: skipping the Chromium CA test "
                   "(apt-get install -y chromium libnss3-tools)")
            notice(msg)
            self.skipTest(msg)

    def chromium(self, home, url):
        env = dict(os.environ, HOME=str(home))
        profile = tempfile.mkdtemp(prefix="haven-chromium-", dir=self.tmp)
        argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--user-data-dir=" + profile,
                "--dump-dom", url]
        return subprocess.run(argv, capture_output=True, text=True, env=env,
                              timeout=BROWSER_WAIT)

    def test_chromium_trusts_leaf(self):
        self.init("--name", "Hillside Primary")
        cert, key = self.mint("localhost")
        server = TLSServer(cert, key)
        self.addCleanup(server.stop)
        url = "https://localhost:%d/" % server.port

        # Without the CA: the browser refuses the certificate.
        bare = self.tmp / "bare-home"
        bare.mkdir()
        p = self.chromium(bare, url)
        self.assertNotIn("inspected hello", p.stdout)
        self.assertIn("ERR_CERT_AUTHORITY_INVALID", p.stderr)

        # With the CA imported as docs/tls-inspection.md says: the page loads.
        home = self.tmp / "home"
        nssdb = home / ".pki" / "nssdb"
        nssdb.mkdir(parents=True)
        subprocess.run([CERTUTIL, "-d", "sql:%s" % nssdb, "-N", "--empty-password"], check=True,
                       capture_output=True, timeout=60)
        subprocess.run([CERTUTIL, "-d", "sql:%s" % nssdb, "-A", "-t", "C,,", "-n",
                        "Hillside Primary haven inspection CA", "-i", str(self.ca)], check=True,
                       capture_output=True, timeout=60)
        p = self.chromium(home, url)
        self.assertIn("inspected hello", p.stdout, p.stderr[-3000:])


if __name__ == "__main__":
    unittest.main()
