#!/usr/bin/env python3
# SPDX-License-Identifier: BSL-1.0
"""Writes the session fuzzer's seed corpus: what each conformance case sends.

    make_corpus.py ECHO_BINARY [--out DIR]     (default: tests/fuzz/corpus)
    make_corpus.py ECHO_BINARY --check         (compare with the committed corpus)

Runs every case of tests/conformance against `ECHO_BINARY --port 0 --exact`,
one case at a time, with the raw client's connections replaced by recording
ones, and writes the bytes the first connection of each case sent as one
fuzzer input named after the case id. Cases that send more than MAX_INPUT
bytes are stopped early and left out. A few plain HTTP requests the cases do
not cover (refusals before the upgrade, the plain route) are added as
`http-*` inputs.

The files are the same on every run, so the committed corpus can be checked
against this script: the masking keys and Sec-WebSocket-Key that the client
draws from os.urandom come from a generator seeded with the case id, the
port in the Host header is replaced by a fixed one, and what is recorded is
what a case asks to send, whether or not the server was still reading.

An input's first byte is the fuzzer's mode (tests/fuzz/session_fuzzer.cpp):
a case whose handshake offered no extension, or exactly
`permessage-deflate`, is stored as its frames after MODE_ECHO or
MODE_DEFLATE, so that the fuzzer's fixed upgrade stands in for the
recorded one; any other offer (section 13) is stored whole after MODE_RAW.
"""

import argparse
import filecmp
import os
import random
import sys
import tempfile

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "conformance"))

import rawclient  # noqa: E402

# The modes of session_fuzzer.cpp that the corpus uses.
MODE_RAW = 0
MODE_ECHO = 1
MODE_DEFLATE = 2
MODE_PLAIN = 4

# Inputs larger than this are left out: libFuzzer's -max_len follows the
# largest seed, and every execution costs in proportion to its input.
MAX_INPUT = 64 * 1024

FIXED_HOST = b"Host: 127.0.0.1\r\n"

# Plain HTTP requests for MODE_RAW: what the server answers before any
# upgrade (README, Routes), and the plain route's origin and subprotocols.
UPGRADE_HEADERS = (b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                   b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")
HTTP_INPUTS = {
    "http-health": b"GET /healthz HTTP/1.1\r\n" + FIXED_HOST + b"\r\n",
    "http-not-found": b"GET /nowhere HTTP/1.1\r\n" + FIXED_HOST + b"\r\n",
    "http-keep-alive": (b"GET /healthz HTTP/1.1\r\n" + FIXED_HOST + b"\r\n"
                        b"HEAD /healthz HTTP/1.1\r\n" + FIXED_HOST + b"\r\n"),
    "http-no-upgrade": b"GET /ws/echo HTTP/1.1\r\n" + FIXED_HOST + b"\r\n",
    "http-post": (b"POST /ws/echo HTTP/1.1\r\n" + FIXED_HOST + UPGRADE_HEADERS
                  + b"Sec-WebSocket-Version: 13\r\nContent-Length: 3\r\n\r\nabc"),
    "http-chunked": (b"POST /ws/echo HTTP/1.1\r\n" + FIXED_HOST
                     + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
    "http-version-12": (b"GET /ws/echo HTTP/1.1\r\n" + FIXED_HOST + UPGRADE_HEADERS
                        + b"Sec-WebSocket-Version: 12\r\n\r\n"),
    "http-no-key": (b"GET /ws/echo HTTP/1.1\r\n" + FIXED_HOST
                    + b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                    b"Sec-WebSocket-Version: 13\r\n\r\n"),
    "http-origin-refused": (b"GET /ws/plain HTTP/1.1\r\n" + FIXED_HOST + UPGRADE_HEADERS
                            + b"Sec-WebSocket-Version: 13\r\nOrigin: https://evil.example\r\n\r\n"),
    "http-subprotocols": (b"GET /ws/plain?name=a%20b HTTP/1.1\r\n" + FIXED_HOST + UPGRADE_HEADERS
                          + b"Sec-WebSocket-Version: 13\r\nOrigin: https://example.com\r\n"
                          b"Sec-WebSocket-Protocol: chat.v0, chat.v1\r\n\r\n"
                          + rawclient.text(b"hi", key=b"\x01\x02\x03\x04")),
    "http-headers-too-large": (b"GET /ws/echo HTTP/1.1\r\n" + FIXED_HOST
                               + b"X-Padding: " + b"a" * 9000 + b"\r\n\r\n"),
    "http-http10": b"GET /healthz HTTP/1.0\r\n\r\n",
}


class TooLarge(Exception):
    """A case sent more than MAX_INPUT bytes on its first connection."""


class SeededOs:
    """Stands in for the `os` module inside rawclient: urandom comes from a
    seeded generator (reseeded per case), everything else from os."""

    def __init__(self):
        self.rng = random.Random(0)

    def urandom(self, n):
        return self.rng.randbytes(n)

    def __getattr__(self, name):
        return getattr(os, name)


# Before the cases are imported: many build their frames, masking keys
# included, when the module loads.
seeded_os = SeededOs()
rawclient.os = seeded_os

import cases as suite  # noqa: E402
from run_conformance import Server  # noqa: E402


class RecordingConnection(rawclient.Connection):
    """A rawclient connection that keeps what it is asked to send."""

    opened = []  # every connection of the case being run, in order

    def __init__(self, port, *args, extensions=None, **kw):
        self.sent = bytearray()
        self.port = port
        self.offer = [extensions] if isinstance(extensions, str) else extensions
        RecordingConnection.opened.append(self)
        super().__init__(port, *args, extensions=extensions, **kw)

    def send(self, data):
        if self is RecordingConnection.opened[0]:
            self.sent += bytes(data)
            if len(self.sent) > MAX_INPUT:
                raise TooLarge()
        super().send(data)

    def fuzzer_input(self):
        """The recording as a fuzzer input: a mode byte, then bytes."""
        sent = bytes(self.sent)
        host = b"Host: 127.0.0.1:%d\r\n" % self.port
        end = sent.find(b"\r\n\r\n") + 4
        if end < 4 or host not in sent[:end]:
            raise RuntimeError("no opening handshake in what the connection sent")
        request, frames = sent[:end].replace(host, FIXED_HOST, 1), sent[end:]
        if not self.offer:
            return bytes([MODE_ECHO]) + frames
        if self.offer == [rawclient.PMD]:
            return bytes([MODE_DEFLATE]) + frames
        return bytes([MODE_RAW]) + request + frames


suite.Connection = RecordingConnection  # Context.connect makes these now


def record_case(case, port):
    """The fuzzer input for one case, or None when it is too large."""
    seeded_os.rng = random.Random(case.id)
    RecordingConnection.opened = []
    ctx = suite.Context(port)
    try:
        case.fn(ctx)
    except TooLarge:
        return None
    except (rawclient.Failure, TimeoutError, OSError):
        pass  # a known failure: what it sent is still a good seed
    finally:
        ctx.close()
    if not RecordingConnection.opened:
        raise RuntimeError("case %s opened no connection" % case.id)
    return RecordingConnection.opened[0].fuzzer_input()


def write_corpus(binary, out):
    server = Server(binary)
    try:
        server.start()
        written = {}
        too_large = 0
        for case in suite.CASES:
            data = record_case(case, server.port)
            if data is None:
                too_large += 1
            else:
                written[case.id] = data
        if not server.alive():
            raise RuntimeError("the echo server exited during the run")
    finally:
        server.stop()
    for name, request in HTTP_INPUTS.items():
        written[name] = bytes([MODE_RAW]) + request
    written["plain-fragments"] = bytes([MODE_PLAIN]) + rawclient.fragments(
        rawclient.OP_TEXT, b"x" * 3000, 1000, key=b"\x05\x06\x07\x08") + rawclient.close(
        1000, key=b"\x05\x06\x07\x08")

    os.makedirs(out, exist_ok=True)
    for stale in set(os.listdir(out)) - set(written):
        os.remove(os.path.join(out, stale))
    for name, data in written.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print("%d inputs, %d bytes, in %s; %d cases over %d bytes left out"
          % (len(written), sum(map(len, written.values())), out, too_large, MAX_INPUT))


def main():
    parser = argparse.ArgumentParser(description="the session fuzzer's seed corpus")
    parser.add_argument("binary", help="the echo example, run as BINARY --port 0 --exact")
    parser.add_argument("--out", default=os.path.join(HERE, "corpus"),
                        help="where to write the corpus (default: tests/fuzz/corpus)")
    parser.add_argument("--check", action="store_true",
                        help="write to a scratch directory and compare with --out")
    args = parser.parse_args()
    if not args.check:
        write_corpus(args.binary, args.out)
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        write_corpus(args.binary, scratch)
        diff = filecmp.dircmp(args.out, scratch)
        _, mismatch, errors = filecmp.cmpfiles(args.out, scratch, diff.common_files,
                                               shallow=False)
        problems = (["only in %s: %s" % (args.out, n) for n in diff.left_only]
                    + ["not in %s: %s" % (args.out, n) for n in diff.right_only]
                    + ["differs: %s" % n for n in mismatch + errors])
    for p in problems:
        print(p)
    print("corpus %s" % ("differs from what the script writes" if problems else "is up to date"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
