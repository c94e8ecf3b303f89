#!/usr/bin/python3
"""A stub DNS server for haven's system tests: standard library only, loopback only.

It answers from a small zone given on the command line, over UDP and TCP on the
same port, and prints that port on stdout (one line, flushed) once it is ready.

    /usr/bin/python3 tests/system/stubdns.py [--host 127.0.0.1] [--port 0]
        [--zone FILE] [--record 'NAME [TTL] TYPE VALUE']... [--log FILE]
        [--negative-ttl SECONDS]

Zone text (FILE not ending in .json), one record a line, '#' starts a comment:

    forcesafesearch.google.com   300  A      127.0.0.1
    www.google.com               300  CNAME  forcesafesearch.google.com
    v6.test                           AAAA   ::1          # TTL defaults to 60
    *.wild.test                  30   A      127.0.0.1    # any name under wild.test
    slow.test                         DROP                # never answered (timeouts)
    broken.test                       SERVFAIL            # also REFUSED

The same in JSON (FILE ending in .json):

    {"forcesafesearch.google.com": [{"type": "A", "value": "127.0.0.1", "ttl": 300}],
     "slow.test": [{"type": "DROP"}]}

Answers: records of the asked type, following CNAMEs inside the zone (the CNAMEs are
in the answer too); NOERROR with no answer (NODATA) if the name has only other types;
NXDOMAIN for a name not in the zone. Names are matched case-insensitively. A UDP answer
over 512 bytes (or the client's EDNS size) is sent truncated (TC) so the client retries
over TCP. --log FILE appends "NAME TYPE PROTO" for every question (tests count them).
--negative-ttl SECONDS puts an SOA record (TTL and MINIMUM SECONDS, owner the name's last
label) in the authority section of NXDOMAIN and NODATA answers, so resolvers may cache them
(RFC 2308); without it negative answers carry no SOA.

In a test:

    p = subprocess.Popen(["/usr/bin/python3", STUBDNS, "--record",
                          "forcesafesearch.google.com 300 A 127.0.0.1"],
                         stdout=subprocess.PIPE, text=True)
    port = int(p.stdout.readline())       # then point haven at 127.0.0.1:port
    ...
    p.terminate(); p.wait()
"""

import argparse
import ipaddress
import json
import signal
import socket
import socketserver
import struct
import sys
import threading

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28,
         "SRV": 33, "OPT": 41, "HTTPS": 65, "ANY": 255}
TYPE_NAMES = {v: k for k, v in TYPES.items()}
ZONE_TYPES = ("A", "AAAA", "CNAME")
BEHAVIOURS = {"DROP": None, "SERVFAIL": 2, "REFUSED": 5}
DEFAULT_TTL = 60
MAX_CNAME_CHAIN = 8


class ZoneError(Exception):
    pass


def norm(name):
    name = name.strip().lower()
    if name.endswith(".") and name != ".":
        name = name[:-1]
    return name


class Zone:
    def __init__(self):
        self.records = {}    # name -> list of (type name, ttl, value)
        self.behaviour = {}  # name -> "DROP" | "SERVFAIL" | "REFUSED"

    def add(self, name, rtype, value=None, ttl=DEFAULT_TTL, where="record"):
        name = norm(name)
        rtype = rtype.upper()
        if not name or any(not label for label in name.split(".")):
            raise ZoneError("%s: bad name %r" % (where, name))
        if rtype in BEHAVIOURS:
            self.behaviour[name] = rtype
            return
        if rtype not in ZONE_TYPES:
            raise ZoneError("%s: type %s is not one of %s, DROP, SERVFAIL, REFUSED"
                            % (where, rtype, ", ".join(ZONE_TYPES)))
        if value is None:
            raise ZoneError("%s: %s needs a value" % (where, rtype))
        try:
            ttl = int(ttl)
        except (TypeError, ValueError):
            raise ZoneError("%s: TTL %r is not a number" % (where, ttl)) from None
        if not 0 <= ttl <= 0x7FFFFFFF:
            raise ZoneError("%s: TTL %d out of range" % (where, ttl))
        try:
            if rtype == "A":
                value = str(ipaddress.IPv4Address(value))
            elif rtype == "AAAA":
                value = str(ipaddress.IPv6Address(value))
            else:
                value = norm(value)
                if not value:
                    raise ValueError("empty target")
        except ValueError as e:
            raise ZoneError("%s: bad %s value %r: %s" % (where, rtype, value, e)) from None
        self.records.setdefault(name, []).append((rtype, ttl, value))

    def add_line(self, line, where):
        fields = line.split("#", 1)[0].split()
        if not fields:
            return
        name, rest = fields[0], fields[1:]
        ttl = DEFAULT_TTL
        if rest and rest[0].isdigit():
            ttl, rest = rest[0], rest[1:]
        if not rest:
            raise ZoneError("%s: expected NAME [TTL] TYPE VALUE" % where)
        if len(rest) > 2:
            raise ZoneError("%s: unexpected text after the value: %r" % (where, " ".join(rest[2:])))
        self.add(name, rest[0], rest[1] if len(rest) > 1 else None, ttl, where)

    def load(self, path):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if path.endswith(".json"):
            try:
                data = json.loads(text)
            except json.JSONDecodeError as e:
                raise ZoneError("%s: %s" % (path, e)) from None
            if not isinstance(data, dict):
                raise ZoneError("%s: expected an object of name -> list of records" % path)
            for name, recs in data.items():
                if not isinstance(recs, list):
                    raise ZoneError("%s: %s: expected a list of records" % (path, name))
                for r in recs:
                    if not isinstance(r, dict) or "type" not in r:
                        raise ZoneError("%s: %s: each record needs a \"type\"" % (path, name))
                    self.add(name, str(r["type"]), r.get("value"), r.get("ttl", DEFAULT_TTL),
                             "%s: %s" % (path, name))
        else:
            for n, line in enumerate(text.splitlines(), 1):
                self.add_line(line, "%s:%d" % (path, n))

    def _find(self, table, name):
        if name in table:
            return table[name]
        labels = name.split(".")
        for i in range(1, len(labels)):
            wild = "*." + ".".join(labels[i:])
            if wild in table:
                return table[wild]
        return None

    def behaviour_of(self, name):
        return self._find(self.behaviour, name)

    def lookup(self, name):
        return self._find(self.records, name)


def read_name(msg, off):
    """Decode a (possibly compressed) name; returns (text, offset after it)."""
    labels, end, jumps = [], None, 0
    while True:
        if off >= len(msg):
            raise ValueError("name runs past the end")
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if off + 1 >= len(msg) or jumps > 16:
                raise ValueError("bad compression pointer")
            if end is None:
                end = off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            jumps += 1
            continue
        if n & 0xC0:
            raise ValueError("bad label type")
        off += 1
        if n == 0:
            break
        labels.append(msg[off:off + n].decode("latin-1"))
        off += n
    return ".".join(labels), (end if end is not None else off)


def encode_name(name):
    out = b""
    for label in name.split("."):
        if label:
            raw = label.encode("latin-1")
            out += bytes([len(raw)]) + raw
    return out + b"\0"


def rr(name, rtype, ttl, value):
    if rtype == "A":
        rdata = ipaddress.IPv4Address(value).packed
    elif rtype == "AAAA":
        rdata = ipaddress.IPv6Address(value).packed
    else:
        rdata = encode_name(value)
    return encode_name(name) + struct.pack("!HHIH", TYPES[rtype], 1, ttl, len(rdata)) + rdata


def soa(owner, ttl):
    rdata = (encode_name("ns." + owner) + encode_name("hostmaster." + owner)
             + struct.pack("!IIIII", 1, 3600, 600, 86400, ttl))
    return encode_name(owner) + struct.pack("!HHIH", TYPES["SOA"], 1, ttl, len(rdata)) + rdata


class Server:
    def __init__(self, zone, log_path, negative_ttl=None):
        self.zone = zone
        self.negative_ttl = negative_ttl
        self.log_lock = threading.Lock()
        self.log_path = log_path

    def log(self, name, qtype, proto):
        if not self.log_path:
            return
        with self.log_lock, open(self.log_path, "a", encoding="utf-8") as f:
            f.write("%s %s %s\n" % (name, TYPE_NAMES.get(qtype, str(qtype)), proto))

    def answer(self, msg, proto):
        """The reply to one query message, or None to stay silent."""
        if len(msg) < 12:
            return None
        qid, flags, qd, _an, _ns, ar = struct.unpack("!HHHHHH", msg[:12])
        if flags & 0x8000 or qd != 1:
            return None
        try:
            qname, off = read_name(msg, 12)
        except ValueError:
            return None
        if off + 4 > len(msg):
            return None
        qtype, _qclass = struct.unpack("!HH", msg[off:off + 4])
        question = msg[12:off + 4]
        limit = 512
        if proto == "udp" and ar:
            limit = self._edns_size(msg, off + 4, limit)
        name = norm(qname)
        self.log(name, qtype, proto)

        rcode, answers = 0, []
        behaviour = self.zone.behaviour_of(name)
        if behaviour == "DROP":
            return None
        if behaviour:
            rcode = BEHAVIOURS[behaviour]
        else:
            owner, chain = name, 0
            while True:
                recs = self.zone.lookup(owner)
                if recs is None:
                    if owner == name:
                        rcode = 3  # NXDOMAIN
                    break
                want = [r for r in recs if TYPE_NAMES.get(qtype) == r[0] or qtype == 255]
                cnames = [r for r in recs if r[0] == "CNAME"]
                if want or not cnames or qtype == TYPES["CNAME"]:
                    answers += [rr(owner, t, ttl, v) for t, ttl, v in want]
                    break
                t, ttl, target = cnames[0]
                answers.append(rr(owner, t, ttl, target))
                owner, chain = target, chain + 1
                if chain > MAX_CNAME_CHAIN:
                    rcode = 2
                    answers = []
                    break
        # QR, opcode copied, AA, RD copied; RA; rcode.
        rflags = 0x8000 | (flags & 0x7800) | 0x0400 | (flags & 0x0100) | 0x0080 | rcode
        authority = []
        if self.negative_ttl is not None and rcode in (0, 3) and not answers:
            authority.append(soa(name.rsplit(".", 1)[-1], self.negative_ttl))
        body = b"".join(answers) + b"".join(authority)
        reply = (struct.pack("!HHHHHH", qid, rflags, 1, len(answers), len(authority), 0)
                 + question + body)
        if proto == "udp" and len(reply) > limit:
            reply = struct.pack("!HHHHHH", qid, rflags | 0x0200, 1, 0, 0, 0) + question
        return reply

    @staticmethod
    def _edns_size(msg, off, default):
        """The UDP size of an OPT record in the additional section, if it is first."""
        try:
            _name, off = read_name(msg, off)
            rtype, size = struct.unpack("!HH", msg[off:off + 4])
        except (ValueError, struct.error):
            return default
        return max(512, min(size, 4096)) if rtype == TYPES["OPT"] else default


def make_servers(server, host, port):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET

    class UDPHandler(socketserver.BaseRequestHandler):
        def handle(self):
            data, sock = self.request
            reply = server.answer(data, "udp")
            if reply is not None:
                sock.sendto(reply, self.client_address)

    class TCPHandler(socketserver.BaseRequestHandler):
        def handle(self):
            conn = self.request
            conn.settimeout(10)
            try:
                while True:
                    head = self._read(conn, 2)
                    if head is None:
                        return
                    msg = self._read(conn, struct.unpack("!H", head)[0])
                    if msg is None:
                        return
                    reply = server.answer(msg, "tcp")
                    if reply is not None:
                        conn.sendall(struct.pack("!H", len(reply)) + reply)
            except OSError:
                return

        @staticmethod
        def _read(conn, n):
            buf = b""
            while len(buf) < n:
                chunk = conn.recv(n - len(buf))
                if not chunk:
                    return None
                buf += chunk
            return buf

    class UDPServer(socketserver.ThreadingUDPServer):
        address_family = family
        daemon_threads = True

    class TCPServer(socketserver.ThreadingTCPServer):
        address_family = family
        daemon_threads = True
        allow_reuse_address = True

    for _attempt in range(20):
        udp = UDPServer((host, port), UDPHandler)
        chosen = udp.server_address[1]
        try:
            tcp = TCPServer((host, chosen), TCPHandler)
        except OSError:
            udp.server_close()
            if port:
                raise
            continue  # the TCP side of this ephemeral port is taken; try another
        return udp, tcp, chosen
    raise OSError("no port free for both UDP and TCP")


def main(argv=None):
    ap = argparse.ArgumentParser(description="Stub DNS server for tests (loopback only).")
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    ap.add_argument("--port", type=int, default=0, help="port (default: any free port)")
    ap.add_argument("--zone", action="append", default=[], help="zone file (text or .json)")
    ap.add_argument("--record", action="append", default=[], metavar="'NAME [TTL] TYPE VALUE'",
                    help="one record, as a line of a text zone")
    ap.add_argument("--log", help="append 'NAME TYPE PROTO' per question to this file")
    ap.add_argument("--negative-ttl", type=int, metavar="SECONDS",
                    help="answer NXDOMAIN and NODATA with an SOA of this TTL (default: no SOA)")
    args = ap.parse_args(argv)

    if args.host not in ("127.0.0.1", "::1", "localhost"):
        ap.error("--host must be a loopback address (127.0.0.1 or ::1)")
    host = "127.0.0.1" if args.host == "localhost" else args.host

    zone = Zone()
    try:
        for path in args.zone:
            zone.load(path)
        for i, line in enumerate(args.record, 1):
            zone.add_line(line, "--record %d" % i)
    except (ZoneError, OSError) as e:
        print("stubdns: %s" % e, file=sys.stderr)
        return 2

    if args.negative_ttl is not None and not 0 <= args.negative_ttl <= 0x7FFFFFFF:
        ap.error("--negative-ttl must be 0 to 2147483647")
    server = Server(zone, args.log, args.negative_ttl)
    udp, tcp, port = make_servers(server, host, args.port)
    for s in (udp, tcp):
        threading.Thread(target=s.serve_forever, daemon=True).start()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(port, flush=True)
    while not stop.wait(0.5):
        pass
    udp.shutdown()
    tcp.shutdown()
    udp.server_close()
    tcp.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
