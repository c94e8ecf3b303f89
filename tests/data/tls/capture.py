#!/usr/bin/python3
"""Capture the ClientHello records a real TLS client sends, for tests/unit/test_hello.c.

Usage: capture.py OUT.bin -- CLIENT ARGS... (the string PORT in ARGS is replaced by the port)

Listens on 127.0.0.1 (a free port), runs the client, reads TLS records from the first
connection until the handshake message they carry is complete, writes exactly those records
to OUT.bin, and closes the connection (the client then fails, which is expected).
Uses only Debian's python3 standard library; nothing leaves loopback.
"""
import socket
import subprocess
import sys


def read_hello(conn):
    """Return the bytes of the records that carry the first handshake message."""
    data = b""
    payload = b""
    want = None  # length of the handshake message, header included, once known
    pos = 0
    while True:
        while len(data) < pos + 5:
            data += recv(conn)
        if data[pos] != 22:
            raise SystemExit("record type %d, not handshake" % data[pos])
        reclen = int.from_bytes(data[pos + 3:pos + 5], "big")
        while len(data) < pos + 5 + reclen:
            data += recv(conn)
        payload += data[pos + 5:pos + 5 + reclen]
        pos += 5 + reclen
        if want is None and len(payload) >= 4:
            want = 4 + int.from_bytes(payload[1:4], "big")
        if want is not None and len(payload) >= want:
            return data[:pos]


def recv(conn):
    chunk = conn.recv(65536)
    if not chunk:
        raise SystemExit("connection closed before the ClientHello was complete")
    return chunk


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        raise SystemExit(__doc__)
    out_path = sys.argv[1]
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(20)
    port = str(srv.getsockname()[1])
    args = [a.replace("PORT", port) for a in sys.argv[3:]]
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        conn, _ = srv.accept()
        conn.settimeout(20)
        hello = read_hello(conn)
        conn.close()
    finally:
        proc.wait(timeout=20)
    with open(out_path, "wb") as f:
        f.write(hello)
    print("%s: %d bytes" % (out_path, len(hello)))


if __name__ == "__main__":
    main()
