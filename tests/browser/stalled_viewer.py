#!/usr/bin/python3
# SPDX-License-Identifier: BSL-1.0
"""A dashboard viewer that stops reading, for dashboard.test.mjs.

Connects to ws://127.0.0.1:PORT/ws/dashboard over a socket with a small
receive buffer (so the kernel holds little for it), reads the history, then
reads nothing until a line "resume SEQ" comes on stdin. Then it reads until
a sample numbered SEQ or later arrives, closes, and reports. Every report is
one JSON line on stdout:
  {"event":"history","samples":N,"last":SEQ}
  {"event":"stalled"}
  {"event":"resumed","seqs":[...],"seconds":S}   the samples read after resuming
Raw sockets rather than a client library: a library would go on reading
into its own buffers while the test wants it stalled.
"""

import base64
import json
import os
import socket
import struct
import sys
import time


def report(**fields):
    print(json.dumps(fields), flush=True)


class Connection:
    def __init__(self, port):
        self.sock = socket.socket()
        # Before connect, so the window it offers stays small.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(15)
        self.sock.connect(("127.0.0.1", port))
        self.buffer = b""
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET /ws/dashboard HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = self.read_until(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise SystemExit(f"upgrade refused: {head[:80]!r}")

    def fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise SystemExit("the server closed the connection")
        self.buffer += chunk

    def read_until(self, marker):
        while marker not in self.buffer:
            self.fill()
        at = self.buffer.index(marker) + len(marker)
        head, self.buffer = self.buffer[:at], self.buffer[at:]
        return head

    def read_exactly(self, count):
        while len(self.buffer) < count:
            self.fill()
        out, self.buffer = self.buffer[:count], self.buffer[count:]
        return out

    def message(self):
        """The next data message's text (a server's frames are unmasked)."""
        parts = []
        while True:
            first, second = self.read_exactly(2)
            opcode, length = first & 0x0F, second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", self.read_exactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", self.read_exactly(8))
            payload = self.read_exactly(length)
            if opcode == 0x8:
                raise SystemExit(f"closed by the server: {payload[:2].hex()} {payload[2:]!r}")
            if opcode >= 0x8:  # a ping or pong: nothing the test needs
                continue
            parts.append(payload)
            if first & 0x80:
                return b"".join(parts).decode()

    def close(self):
        mask = os.urandom(4)
        body = struct.pack("!H", 1000)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(body))
        self.sock.sendall(bytes([0x88, 0x80 | len(body)]) + mask + masked)
        self.sock.close()


def main():
    port = int(sys.argv[1])
    connection = Connection(port)
    history = json.loads(connection.message())
    if history.get("type") != "history":
        raise SystemExit(f"the first message is not the history: {history}")
    samples = history["samples"]
    report(event="history", samples=len(samples), last=samples[-1]["seq"] if samples else 0)
    report(event="stalled")
    line = sys.stdin.readline().split()
    if len(line) != 2 or line[0] != "resume":
        raise SystemExit(f"expected 'resume SEQ' on stdin, got {line}")
    target = int(line[1])
    started = time.monotonic()
    seqs = []
    while not seqs or seqs[-1] < target:
        message = json.loads(connection.message())
        if message.get("type") == "sample":
            seqs.append(message["seq"])
    report(event="resumed", seqs=seqs, seconds=round(time.monotonic() - started, 3))
    connection.close()


if __name__ == "__main__":
    main()
