# SPDX-License-Identifier: BSL-1.0
"""A raw-socket RFC 6455 client for conformance testing.

It speaks WebSocket by hand, byte by byte, so that a test can send anything:
frames with any FIN/RSV/opcode bits, masked or not, with any length encoding
(including non-minimal ones and lengths that lie), whole, split at chosen
offsets, dribbled one byte per write, or many frames in one write. What the
server sends back is parsed strictly: a frame that breaks RFC 6455 on the
server side (masked, reserved bits, bad length encoding, ...) fails the test.

It also speaks permessage-deflate (RFC 7692) when a case offers it: the
offer goes into the upgrade as written, the server's answer is checked
against RFC 7692 section 7.1, and then messages can be sent compressed (raw
DEFLATE, the trailing 00 00 ff ff removed, RSV1 on the first frame only,
with or without context takeover) and compressed messages from the server
are inflated with the window and context takeover that were agreed.

Every wait has a deadline; nothing sleeps to synchronise. The `expect_*`
methods raise `Failure` with a readable reason.

Only the Python standard library is used.
"""

import base64
import hashlib
import os
import select
import socket
import struct
import time
import zlib

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

OP_NAMES = {
    OP_CONT: "continuation",
    OP_TEXT: "text",
    OP_BINARY: "binary",
    OP_CLOSE: "close",
    OP_PING: "ping",
    OP_PONG: "pong",
}

# Reserved bits as they sit in the three-bit RSV field.
RSV1 = 4
RSV2 = 2
RSV3 = 1

DEFAULT_TIMEOUT = 5.0

# A close frame without a status code (an empty payload).
NO_STATUS = None


class Failure(AssertionError):
    """The server did not do what the case expects."""


# ---------------------------------------------------------------------------
# Building frames


def mask_payload(payload, key):
    """XORs `payload` with the 4-byte masking `key` (RFC 6455 section 5.3)."""
    n = len(payload)
    if n == 0:
        return b""
    if n < 64:
        return bytes(b ^ key[i & 3] for i, b in enumerate(payload))
    stream = (bytes(key) * ((n + 3) // 4))[:n]
    value = int.from_bytes(payload, "little") ^ int.from_bytes(stream, "little")
    return value.to_bytes(n, "little")


def encode_length(n, encoding=None):
    """The 7-bit length field and the extended length bytes for `n`.

    `encoding` is None for the minimal encoding RFC 6455 requires, or 7, 16 or
    64 to force one (a larger one than needed is a non-minimal encoding).
    """
    if encoding is None:
        encoding = 7 if n <= 125 else 16 if n <= 0xFFFF else 64
    if encoding == 7:
        if n > 125:
            raise ValueError("a 7-bit length holds at most 125")
        return n, b""
    if encoding == 16:
        return 126, struct.pack(">H", n)
    if encoding == 64:
        return 127, struct.pack(">Q", n)
    raise ValueError("encoding must be 7, 16 or 64")


def frame(opcode, payload=b"", *, fin=True, rsv=0, mask=True, key=None, length=None,
          encoding=None):
    """Serialises one client frame.

    opcode    any 4-bit value, reserved ones included
    payload   bytes (str is encoded as UTF-8)
    fin, rsv  the FIN bit and the 3-bit RSV field (see RSV1, RSV2, RSV3)
    mask      False sends the payload unmasked, which a server must reject
    key       the 4-byte masking key; random by default
    length    the value to put in the length field, if not len(payload)
    encoding  None (minimal), 7, 16 or 64: the length encoding to use
    """
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    payload = bytes(payload)
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0x0F)
    field, extended = encode_length(n, encoding)
    b1 = (0x80 if mask else 0) | field
    head = bytes((b0, b1)) + extended
    if not mask:
        return head + payload
    if key is None:
        key = os.urandom(4)
    key = bytes(key)
    if len(key) != 4:
        raise ValueError("a masking key is 4 bytes")
    return head + key + mask_payload(payload, key)


def text(data, **kw):
    return frame(OP_TEXT, data, **kw)


def binary(data, **kw):
    return frame(OP_BINARY, data, **kw)


def cont(data=b"", **kw):
    return frame(OP_CONT, data, **kw)


def ping(data=b"", **kw):
    return frame(OP_PING, data, **kw)


def pong(data=b"", **kw):
    return frame(OP_PONG, data, **kw)


def close_payload(code=NO_STATUS, reason=b""):
    if isinstance(reason, str):
        reason = reason.encode("utf-8")
    if code is NO_STATUS:
        return bytes(reason)
    return struct.pack(">H", code) + bytes(reason)


def close(code=NO_STATUS, reason=b"", **kw):
    return frame(OP_CLOSE, close_payload(code, reason), **kw)


def fragments(opcode, data, sizes, **kw):
    """Splits `data` into a fragmented message: the first frame has `opcode`,
    the rest are continuations, the last has FIN. `sizes` is either a chunk
    size or a list of cut offsets."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if isinstance(sizes, int):
        cuts = list(range(sizes, len(data), sizes))
    else:
        cuts = list(sizes)
    bounds = [0] + cuts + [len(data)]
    frames = []
    for i in range(len(bounds) - 1):
        part = data[bounds[i]:bounds[i + 1]]
        last = i == len(bounds) - 2
        frames.append(frame(opcode if i == 0 else OP_CONT, part, fin=last, **kw))
    return b"".join(frames)


# ---------------------------------------------------------------------------
# permessage-deflate (RFC 7692)

PMD = "permessage-deflate"

# What a sender removes from the end of a compressed message and a receiver
# appends before inflating (RFC 7692 sections 7.2.1 and 7.2.2).
TAIL = b"\x00\x00\xff\xff"

# The most a compressed message from the server may inflate to before the
# client gives up on it (the echo server's limit is 16 MiB).
MAX_INFLATED = 32 * 1024 * 1024

# zlib lets a back-reference reach into the output of the same inflate call
# whatever the window size; only references further back must come from the
# window. To hold the server to a window smaller than 15 bits, its messages
# are inflated this many bytes per call: a reference further back than the
# window plus this fails with "invalid distance too far back".
WINDOW_STEP = 64

_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789"
                   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")

_NO_CONTEXT = ("server_no_context_takeover", "client_no_context_takeover")
_WINDOW = ("server_max_window_bits", "client_max_window_bits")


def parse_extensions(value):
    """Parses a Sec-WebSocket-Extensions value (RFC 6455 section 9.1) into a
    list of (name, [(param, value or None), ...]); quoted values are
    unescaped. Empty list elements are skipped (RFC 7230 section 7).
    Raises ValueError on a syntax error."""
    pos = 0
    n = len(value)

    def skip_ws():
        nonlocal pos
        while pos < n and value[pos] in " \t":
            pos += 1

    def token(what):
        nonlocal pos
        start = pos
        while pos < n and value[pos] in _TCHAR:
            pos += 1
        if pos == start:
            raise ValueError("expected %s at offset %d of %r" % (what, start, value))
        return value[start:pos]

    def quoted():
        nonlocal pos
        pos += 1
        out = []
        while pos < n and value[pos] != '"':
            if value[pos] == "\\":
                pos += 1
                if pos == n:
                    break
            out.append(value[pos])
            pos += 1
        if pos == n:
            raise ValueError("unterminated quoted string in %r" % value)
        pos += 1
        return "".join(out)

    result = []
    while True:
        skip_ws()
        if pos < n and value[pos] == ",":
            pos += 1
            continue
        if pos == n:
            return result
        name = token("an extension name")
        params = []
        skip_ws()
        while pos < n and value[pos] == ";":
            pos += 1
            skip_ws()
            param = token("a parameter name")
            skip_ws()
            arg = None
            if pos < n and value[pos] == "=":
                pos += 1
                skip_ws()
                arg = quoted() if pos < n and value[pos] == '"' else token("a parameter value")
                skip_ws()
            params.append((param, arg))
        result.append((name, params))
        skip_ws()
        if pos < n and value[pos] != ",":
            raise ValueError("unexpected %r at offset %d of %r" % (value[pos], pos, value))


def window_bits(value):
    """The value of a *_max_window_bits parameter, or None if it is not a
    decimal integer from 8 to 15 without leading zeros (RFC 7692 7.1.2)."""
    if value is None or value not in [str(b) for b in range(8, 16)]:
        return None
    return int(value)


def format_params(params):
    return "; ".join([PMD] + [p if v is None else "%s=%s" % (p, v) for p, v in params])


def pmd_offer_problem(params):
    """Why a permessage-deflate offer MUST be declined (RFC 7692 section 7.1:
    an unknown parameter, an invalid value, a parameter given twice), or
    None for an offer a server may accept."""
    seen = set()
    for name, value in params:
        key = name.lower()
        if key in seen:
            return "%s appears twice" % key
        seen.add(key)
        if key in _NO_CONTEXT:
            if value is not None:
                return "%s has a value" % key
        elif key == "server_max_window_bits":
            if window_bits(value) is None:
                return "server_max_window_bits=%s is not 8 to 15" % value
        elif key == "client_max_window_bits":
            if value is not None and window_bits(value) is None:
                return "client_max_window_bits=%s is not 8 to 15" % value
        else:
            return "%s is not a permessage-deflate parameter" % name
    return None


class Pmd:
    """What was agreed for permessage-deflate on one connection."""

    __slots__ = ("server_no_context_takeover", "client_no_context_takeover",
                 "server_max_window_bits", "client_max_window_bits", "response", "offer")

    def __init__(self):
        self.server_no_context_takeover = False
        self.client_no_context_takeover = False
        self.server_max_window_bits = 15  # the window the server compresses with
        self.client_max_window_bits = 15  # the window the client compresses with
        self.response = None              # the server's answer, as sent
        self.offer = None                 # index of the offer it accepted

    def __repr__(self):
        return "Pmd(%s)" % self.response


def pmd_response_problem(offer, response):
    """Checks the parameters of a server's permessage-deflate answer against
    one offer (RFC 7692 sections 7.1.1 and 7.1.2). Returns (None, Pmd) when
    the answer legally accepts that offer, else (reason, None)."""
    offered = {name.lower(): value for name, value in offer}
    seen = {}
    for name, value in response:
        key = name.lower()
        if key in seen:
            return "%s appears twice (section 7.1)" % key, None
        seen[key] = value
        if key in _NO_CONTEXT:
            if value is not None:
                return "%s has a value (section 7.1.1)" % key, None
        elif key == "server_max_window_bits":
            bits = window_bits(value)
            if bits is None:
                return ("server_max_window_bits=%s is not a value from 8 to 15 "
                        "(section 7.1.2.1)" % value), None
            if key in offered and bits > int(offered[key]):
                return ("server_max_window_bits=%d is larger than the %s offered "
                        "(section 7.1.2.1)" % (bits, offered[key])), None
        elif key == "client_max_window_bits":
            if key not in offered:
                return ("client_max_window_bits in the answer, but not in the offer "
                        "(section 7.1.2.2)"), None
            bits = window_bits(value)
            if bits is None:
                return ("client_max_window_bits=%s is not a value from 8 to 15 "
                        "(section 7.1.2.2)" % value), None
            if offered[key] is not None and bits > int(offered[key]):
                return ("client_max_window_bits=%d is larger than the %s offered "
                        "(section 7.1.2.2)" % (bits, offered[key])), None
        else:
            return "%s is not a permessage-deflate response parameter (section 7.1)" % name, None
    if "server_no_context_takeover" in offered and "server_no_context_takeover" not in seen:
        return ("server_no_context_takeover was offered; accepting the offer requires it in "
                "the answer (section 7.1.1.1)"), None
    if "server_max_window_bits" in offered and "server_max_window_bits" not in seen:
        return ("server_max_window_bits was offered; accepting the offer requires it in "
                "the answer (section 7.1.2.1)"), None
    pmd = Pmd()
    pmd.server_no_context_takeover = "server_no_context_takeover" in seen
    pmd.client_no_context_takeover = ("client_no_context_takeover" in seen
                                      or "client_no_context_takeover" in offered)
    if "server_max_window_bits" in seen:
        pmd.server_max_window_bits = int(seen["server_max_window_bits"])
    bits = [15]
    if seen.get("client_max_window_bits") is not None:
        bits.append(int(seen["client_max_window_bits"]))
    if offered.get("client_max_window_bits") is not None:
        bits.append(int(offered["client_max_window_bits"]))
    pmd.client_max_window_bits = min(bits)
    return None, pmd


def negotiate(offer_value, answer):
    """The outcome of offering `offer_value` (a Sec-WebSocket-Extensions
    value) when the server answered `answer` (its header value, or None):
    a Pmd, or None when the server declined. Raises Failure for an answer a
    client must fail the connection on."""
    try:
        offers = parse_extensions(offer_value)
    except ValueError:
        offers = []  # a deliberately malformed offer: nothing may be accepted
    if answer is None:
        return None
    try:
        elements = parse_extensions(answer)
    except ValueError as e:
        raise Failure("Sec-WebSocket-Extensions in the answer is malformed: %s" % e)
    if not elements:
        raise Failure("empty Sec-WebSocket-Extensions header in the answer %r" % answer)
    offered_names = {name.lower() for name, _ in offers}
    for name, _ in elements:
        if name.lower() not in offered_names:
            raise Failure("server selected extension %r that was not offered "
                          "(RFC 6455 section 9.1)" % name)
        if name.lower() != PMD:
            raise Failure("server selected extension %r, which no server can support" % name)
    if len(elements) > 1:
        raise Failure("server accepted permessage-deflate %d times: %r (RFC 7692 section 5)"
                      % (len(elements), answer))
    params = elements[0][1]
    candidates = [(i, p) for i, (name, p) in enumerate(
        [(n, p) for n, p in offers if n.lower() == PMD]) if pmd_offer_problem(p) is None]
    if not candidates:
        reasons = "; ".join(pmd_offer_problem(p) or "" for n, p in offers if n.lower() == PMD)
        raise Failure("server answered %r to an offer it MUST decline (RFC 7692 section 7.1: %s)"
                      % (answer, reasons))
    problems = []
    for index, offer in candidates:
        problem, pmd = pmd_response_problem(offer, params)
        if problem is None:
            pmd.response = answer
            pmd.offer = index
            return pmd
        problems.append("to %r: %s" % (format_params(offer), problem))
    raise Failure("server's answer %r is not a legal acceptance of the offer %s"
                  % (answer, "; or ".join(problems)))


def deflater(bits=15, level=6, strategy=zlib.Z_DEFAULT_STRATEGY):
    """A raw DEFLATE compressor whose back-references reach at most 2^bits
    bytes. zlib refuses an 8-bit window for raw DEFLATE and uses 9 bits;
    its matches then reach at most 512 - 262 = 250 bytes, which still fits
    in an 8-bit (256-byte) window."""
    return zlib.compressobj(level, zlib.DEFLATED, -max(bits, 9), 8, strategy)


def deflate_with(compressor, payload, final=False):
    """The payload of one compressed message (RFC 7692 section 7.2.1): the
    data flushed to a byte boundary with an empty stored block whose
    trailing 00 00 ff ff is removed. With `final` the message ends with a
    block that has BFINAL set instead (section 7.2.3.3), and no tail is
    removed."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    if final:
        return compressor.compress(payload) + compressor.flush(zlib.Z_FINISH)
    data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert data.endswith(TAIL)
    return data[:-4]


def deflate(payload, bits=15, **kw):
    """Compresses one message with a fresh compressor (no context)."""
    return deflate_with(deflater(bits, **kw), payload)


def compressed(opcode, data, sizes=None, **kw):
    """Frames already compressed message data: RSV1 on the first frame only
    (RFC 7692 section 6), split like `fragments` when `sizes` is given."""
    if sizes is None:
        return frame(opcode, data, rsv=RSV1, **kw)
    if isinstance(sizes, int):
        cuts = list(range(sizes, len(data), sizes)) if sizes > 0 else []
    else:
        cuts = list(sizes)
    bounds = [0] + cuts + [len(data)]
    frames = []
    for i in range(len(bounds) - 1):
        last = i == len(bounds) - 2
        frames.append(frame(opcode if i == 0 else OP_CONT, data[bounds[i]:bounds[i + 1]],
                            fin=last, rsv=RSV1 if i == 0 else 0, **kw))
    return b"".join(frames)


# ---------------------------------------------------------------------------
# Parsing frames from the server


class Frame:
    __slots__ = ("fin", "rsv", "opcode", "payload")

    def __init__(self, fin, rsv, opcode, payload):
        self.fin = fin
        self.rsv = rsv
        self.opcode = opcode
        self.payload = payload

    @property
    def is_control(self):
        return self.opcode >= 0x8

    def close_code(self):
        if len(self.payload) < 2:
            return NO_STATUS
        return struct.unpack(">H", self.payload[:2])[0]

    def close_reason(self):
        return self.payload[2:]

    def __repr__(self):
        return describe(self)


def preview(data, limit=32):
    data = bytes(data)
    if len(data) <= limit:
        return repr(data)
    return repr(data[:limit]) + "..."


def describe(f):
    """A short human description of a received frame."""
    name = OP_NAMES.get(f.opcode, "opcode 0x%X" % f.opcode)
    if f.opcode == OP_CLOSE:
        code = f.close_code()
        if code is NO_STATUS:
            return "close (no status code)"
        reason = f.close_reason()
        return "close %d%s" % (code, " " + preview(reason) if reason else "")
    flags = "" if f.fin else " (FIN=0)"
    return "%s%s, %d bytes %s" % (name, flags, len(f.payload), preview(f.payload))


def describe_codes(codes):
    names = ["no status code" if c is NO_STATUS else str(c) for c in codes]
    return names[0] if len(names) == 1 else "one of " + ", ".join(names)


def is_valid_utf8(data):
    try:
        bytes(data).decode("utf-8", errors="strict")
        return True
    except UnicodeDecodeError:
        return False


def first_difference(a, b):
    n = min(len(a), len(b))
    step = 4096
    for start in range(0, n, step):
        if a[start:start + step] != b[start:start + step]:
            for i in range(start, min(start + step, n)):
                if a[i] != b[i]:
                    return i
    return n


# ---------------------------------------------------------------------------
# The connection


class Connection:
    """One TCP connection, upgraded to WebSocket by hand."""

    def __init__(self, port, host="127.0.0.1", path="/ws/echo", timeout=DEFAULT_TIMEOUT,
                 handshake=True, extensions=None):
        """`extensions` is offered in Sec-WebSocket-Extensions: a string, or a
        list of strings for one header line each."""
        self.timeout = timeout
        self.buf = bytearray()
        self.eof = False       # the server closed (or reset) its side
        self.was_reset = False # ... with a reset rather than a FIN
        self.send_failed = None
        self.closed_sent = False
        self.received = []     # descriptions of every frame received, for reports
        self.pushed_back = []  # frames peeked at and not yet consumed
        self.response_headers = {}
        self.pmd = None        # a Pmd once permessage-deflate is agreed
        self.deflater = None   # the client's compressor, kept for context takeover
        self.inflater = None   # the client's decompressor for the server's messages
        self.last_compressed = False  # whether the last message read had RSV1
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if handshake:
            self.handshake(host, port, path, extensions)

    # -- lifetime ---------------------------------------------------------

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.abort()

    def abort(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _deadline(self, timeout):
        return time.monotonic() + (self.timeout if timeout is None else timeout)

    # -- opening handshake ------------------------------------------------

    def handshake(self, host, port, path, extensions=None):
        key = base64.b64encode(os.urandom(16))
        if isinstance(extensions, str):
            extensions = [extensions]
        offer_lines = b"".join(b"Sec-WebSocket-Extensions: " + e.encode("latin-1") + b"\r\n"
                               for e in extensions or [])
        request = (
            b"GET " + path.encode() + b" HTTP/1.1\r\n"
            b"Host: " + ("%s:%d" % (host, port)).encode() + b"\r\n"
            b"Upgrade: websocket\r\n"
            b"Connection: Upgrade\r\n"
            b"Sec-WebSocket-Key: " + key + b"\r\n"
            b"Sec-WebSocket-Version: 13\r\n"
            + offer_lines + b"\r\n")
        self.send(request)
        deadline = self._deadline(None)
        while b"\r\n\r\n" not in self.buf:
            try:
                more = self._fill(deadline)
            except TimeoutError:
                raise Failure("timed out waiting for the opening handshake response")
            if not more:
                raise Failure("connection closed during the opening handshake")
            if len(self.buf) > 65536:
                raise Failure("opening handshake response too long")
        end = self.buf.index(b"\r\n\r\n")
        head = bytes(self.buf[:end]).decode("latin-1")
        del self.buf[:end + 4]
        lines = head.split("\r\n")
        status = lines[0].split(" ", 2)
        if len(status) < 2 or status[0] != "HTTP/1.1" or status[1] != "101":
            raise Failure("expected HTTP/1.1 101, got %r" % lines[0])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name in headers:  # a list header sent on several lines
                headers[name] += ", " + value.strip()
            else:
                headers[name] = value.strip()
        self.response_headers = headers
        if headers.get("upgrade", "").lower() != "websocket":
            raise Failure("101 response without 'Upgrade: websocket'")
        if "upgrade" not in [t.strip().lower() for t in headers.get("connection", "").split(",")]:
            raise Failure("101 response without 'Connection: Upgrade'")
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
        if headers.get("sec-websocket-accept") != accept:
            raise Failure("Sec-WebSocket-Accept is %r, expected %r"
                          % (headers.get("sec-websocket-accept"), accept))
        # No subprotocol is offered, so none may be selected; an extension
        # only if offered (RFC 6455 section 4.1, client steps 5 and 6), and
        # then the answer must be legal (RFC 7692 section 7.1).
        if "sec-websocket-protocol" in headers:
            raise Failure("server selected sec-websocket-protocol %r that was not offered"
                          % headers["sec-websocket-protocol"])
        answer = headers.get("sec-websocket-extensions")
        if not extensions:
            if answer is not None:
                raise Failure("server selected sec-websocket-extensions %r that was not offered"
                              % answer)
        else:
            self.pmd = negotiate(", ".join(extensions), answer)

    # -- sending ----------------------------------------------------------

    def send(self, data):
        """Writes `data` completely, reading whatever arrives meanwhile so that
        large writes cannot deadlock against a server echoing them. A write
        the server refuses (it closed already) is recorded, not raised: the
        expectation that follows reports what the server did."""
        if self.send_failed:
            return
        view = memoryview(data if isinstance(data, (bytes, bytearray)) else bytes(data))
        if len(view) <= 65536:
            try:
                self.sock.settimeout(self.timeout)
                self.sock.sendall(view)
            except (BrokenPipeError, ConnectionResetError) as e:
                self.send_failed = e
            except socket.timeout:
                raise Failure("timed out writing %d bytes" % len(view))
            return
        deadline = self._deadline(max(self.timeout, 30.0))
        sent = 0
        self.sock.setblocking(False)
        try:
            while sent < len(view):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Failure("timed out writing %d bytes (%d written)" % (len(view), sent))
                rd = [] if self.eof else [self.sock]
                readable, writable, _ = select.select(rd, [self.sock], [], remaining)
                if readable:
                    self._recv_nonblocking()
                if writable:
                    try:
                        sent += self.sock.send(view[sent:sent + (1 << 20)])
                    except BlockingIOError:
                        pass
                    except (BrokenPipeError, ConnectionResetError) as e:
                        self.send_failed = e
                        return
        finally:
            self.sock.setblocking(True)

    def send_dribble(self, data, step=1):
        """Writes `data` `step` bytes per write (TCP_NODELAY is on)."""
        for i in range(0, len(data), step):
            self.send(data[i:i + step])

    def send_split(self, data, cuts):
        """Writes `data` in pieces cut at the offsets `cuts`."""
        bounds = [0] + sorted(cuts) + [len(data)]
        for i in range(len(bounds) - 1):
            if bounds[i + 1] > bounds[i]:
                self.send(data[bounds[i]:bounds[i + 1]])

    def send_chunks(self, data, size):
        for i in range(0, len(data), size):
            self.send(data[i:i + size])

    def send_paced(self, data, size, interval):
        """Writes `data` in pieces of `size` bytes, `interval` seconds apart:
        a slow peer, so that the server sees each piece in its own read."""
        next_write = time.monotonic()
        for i in range(0, len(data), size):
            delay = next_write - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # pacing, not synchronisation
            self.send(data[i:i + size])
            next_write += interval

    def shutdown_write(self):
        """Half-closes: sends FIN, keeps reading."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def reset(self):
        """Drops the connection with a TCP reset instead of a FIN."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.abort()

    def send_frames(self, frames, how="whole"):
        """Sends a list of frames: 'whole' in one write, 'separate' one write
        per frame, 'dribble' one byte per write."""
        if how == "whole":
            self.send(b"".join(frames))
        elif how == "separate":
            for f in frames:
                self.send(f)
        elif how == "dribble":
            self.send_dribble(b"".join(frames))
        else:
            raise ValueError(how)

    # -- permessage-deflate -------------------------------------------------

    def deflate(self, payload, context=None, final=False, **kw):
        """Compresses one whole message for this connection, with the window
        agreed for the client. `context` True reuses the connection's
        compressor (context takeover: the LZ77 window carries over from the
        previous messages), False uses a fresh one; by default the compressor
        is kept unless client_no_context_takeover was agreed. `kw` (level,
        strategy) applies when a compressor is created."""
        bits = self.pmd.client_max_window_bits if self.pmd is not None else 15
        if context is None:
            context = self.pmd is None or not self.pmd.client_no_context_takeover
        if not context:
            return deflate_with(deflater(bits, **kw), payload, final)
        if self.deflater is None:
            self.deflater = deflater(bits, **kw)
        data = deflate_with(self.deflater, payload, final)
        if final:
            self.deflater = None  # the stream has ended
        return data

    def send_compressed(self, opcode, payload, sizes=None, how="whole", **kw):
        """Sends `payload` as one compressed message (see `deflate`), in one
        frame or split like `fragments`."""
        data = compressed(opcode, self.deflate(payload, **kw), sizes)
        if how == "whole":
            self.send(data)
        else:
            self.send_dribble(data)

    # -- receiving --------------------------------------------------------

    def _recv_nonblocking(self):
        try:
            data = self.sock.recv(1 << 20)
        except BlockingIOError:
            return
        except ConnectionResetError:
            self.eof = True
            self.was_reset = True
            return
        if not data:
            self.eof = True
        else:
            self.buf += data

    def _fill(self, deadline):
        """Reads more bytes; False at end of stream; Failure at the deadline."""
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(1 << 20)
        except socket.timeout:
            raise TimeoutError
        except ConnectionResetError:
            self.eof = True
            self.was_reset = True
            return False
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _need(self, n, deadline):
        while len(self.buf) < n:
            if not self._fill(deadline):
                return False
        return True

    def read_frame(self, timeout=None, deadline=None):
        """The next frame from the server, or None if the connection ended
        cleanly between frames. Raises TimeoutError at the deadline and
        Failure for a frame that breaks RFC 6455."""
        if self.pushed_back:
            return self.pushed_back.pop(0)
        if deadline is None:
            deadline = self._deadline(timeout)
        if not self._need(2, deadline):
            if self.buf:
                raise Failure("connection ended inside a frame header")
            return None
        b0, b1 = self.buf[0], self.buf[1]
        fin = bool(b0 & 0x80)
        rsv = (b0 >> 4) & 7
        opcode = b0 & 0x0F
        masked = bool(b1 & 0x80)
        n = b1 & 0x7F
        pos = 2
        if n == 126:
            if not self._need(4, deadline):
                raise Failure("connection ended inside a frame header")
            n = struct.unpack(">H", self.buf[2:4])[0]
            pos = 4
            if n < 126:
                raise Failure("server used a non-minimal 16-bit length for %d bytes "
                              "(RFC 6455 section 5.2)" % n)
        elif n == 127:
            if not self._need(10, deadline):
                raise Failure("connection ended inside a frame header")
            n = struct.unpack(">Q", self.buf[2:10])[0]
            pos = 10
            if n >> 63:
                raise Failure("server sent a 64-bit length with the top bit set")
            if n <= 0xFFFF:
                raise Failure("server used a non-minimal 64-bit length for %d bytes "
                              "(RFC 6455 section 5.2)" % n)
        if masked:
            raise Failure("server sent a masked frame (RFC 6455 section 5.1)")
        if rsv == RSV1 and self.pmd is not None:
            if opcode not in (OP_TEXT, OP_BINARY):
                raise Failure("server set RSV1 on a %s frame (RFC 7692 section 6: only the "
                              "first frame of a data message may have it)"
                              % OP_NAMES.get(opcode, "reserved opcode"))
        elif rsv:
            raise Failure("server set reserved bits 0x%X without an extension" % rsv)
        if opcode not in OP_NAMES:
            raise Failure("server sent reserved opcode 0x%X" % opcode)
        if opcode >= 0x8 and (not fin or n > 125):
            raise Failure("server sent an invalid control frame (FIN=%d, %d bytes)"
                          % (fin, n))
        if not self._need(pos + n, deadline):
            raise Failure("connection ended inside a %s frame (%d of %d payload bytes)"
                          % (OP_NAMES[opcode], max(0, len(self.buf) - pos), n))
        payload = bytes(self.buf[pos:pos + n])
        del self.buf[:pos + n]
        f = Frame(fin, rsv, opcode, payload)
        self.received.append(describe(f))
        return f

    def peek_frame(self, timeout=None, waiting_for="a frame"):
        """The next frame, left in place for the next read."""
        f = self._next(self._deadline(timeout), waiting_for)
        self.pushed_back.insert(0, f)
        return f

    def _next(self, deadline, waiting_for):
        try:
            f = self.read_frame(deadline=deadline)
        except TimeoutError:
            raise Failure("timed out waiting for %s%s" % (waiting_for, self._history()))
        if f is None:
            how = "reset" if self.was_reset else "closed"
            raise Failure("connection %s by the server while waiting for %s%s"
                          % (how, waiting_for, self._history()))
        return f

    def _history(self):
        if not self.received:
            return " (nothing received)"
        tail = self.received[-3:]
        return " (received: %s%s)" % ("; ".join(tail), ", ..." if len(self.received) > 3 else "")

    # -- expectations -----------------------------------------------------

    def read_message(self, timeout=None, deadline=None):
        """Reads one whole data message, reassembling fragments. Returns
        (opcode, payload, number of frames). A control frame in between is a
        failure (an echo server has no reason to send one here). A message
        whose first frame has RSV1 (permessage-deflate) is inflated, and
        `last_compressed` tells whether it was."""
        if deadline is None:
            deadline = self._deadline(timeout)
        parts = []
        opcode = None
        count = 0
        is_compressed = False
        while True:
            f = self._next(deadline, "a message")
            if f.is_control:
                raise Failure("expected a message, got %s" % describe(f))
            count += 1
            if opcode is None:
                if f.opcode == OP_CONT:
                    raise Failure("server sent a continuation frame with no message started")
                opcode = f.opcode
                is_compressed = bool(f.rsv & RSV1)
            elif f.opcode != OP_CONT:
                raise Failure("server started a new %s message inside a fragmented one"
                              % OP_NAMES[f.opcode])
            parts.append(f.payload)
            if f.fin:
                break
        payload = b"".join(parts)
        if is_compressed:
            payload = self._inflate(opcode, payload)
        self.last_compressed = is_compressed
        if opcode == OP_TEXT and not is_valid_utf8(payload):
            raise Failure("server sent a text message that is not valid UTF-8")
        return opcode, payload, count

    def _inflate(self, opcode, data):
        """Inflates a compressed message from the server (RFC 7692 section
        7.2.2) with the window it agreed to compress with, keeping the
        decompressor across messages unless server_no_context_takeover was
        agreed: a back-reference beyond that window or into an earlier
        message the server promised not to use fails to inflate."""
        pmd = self.pmd
        if self.inflater is None or pmd.server_no_context_takeover or self.inflater.eof:
            self.inflater = zlib.decompressobj(wbits=-pmd.server_max_window_bits)
        try:
            if pmd.server_max_window_bits < 15:
                out = self._inflate_in_steps(data + TAIL)
            else:
                out = self.inflater.decompress(data + TAIL, MAX_INFLATED)
        except zlib.error as e:
            raise Failure("server's compressed %s message (%d bytes) does not inflate with a "
                          "%d-bit window%s: %s"
                          % (OP_NAMES[opcode], len(data), pmd.server_max_window_bits,
                             " and no context takeover" if pmd.server_no_context_takeover
                             else "", e))
        if self.inflater.unconsumed_tail or len(out) > MAX_INFLATED:
            raise Failure("server's compressed %s message inflates to more than %d bytes"
                          % (OP_NAMES[opcode], MAX_INFLATED))
        return out

    def _inflate_in_steps(self, data):
        """Inflates WINDOW_STEP bytes per call (see WINDOW_STEP)."""
        parts = []
        total = 0
        while True:
            out = self.inflater.decompress(data, WINDOW_STEP)
            data = self.inflater.unconsumed_tail
            if not out and not data:
                return b"".join(parts)
            parts.append(out)
            total += len(out)
            if total > MAX_INFLATED:
                return b"".join(parts)

    def expect_message(self, payload, opcode=OP_TEXT, timeout=None, single_frame=False,
                       compressed=None):
        """The next frames form exactly this message (after inflating, if it
        came compressed). `compressed` True or False also requires RSV1 set
        or clear. Returns the frame count."""
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        got_op, got, count = self.read_message(timeout=timeout)
        if got_op != opcode:
            raise Failure("expected a %s message, got a %s message of %d bytes"
                          % (OP_NAMES[opcode], OP_NAMES[got_op], len(got)))
        if got != payload:
            if len(got) != len(payload):
                raise Failure("%s echo of %d bytes came back with %d bytes"
                              % (OP_NAMES[opcode], len(payload), len(got)))
            i = first_difference(got, payload)
            raise Failure("%s echo of %d bytes differs at offset %d: sent %s, got %s"
                          % (OP_NAMES[opcode], len(payload), i,
                             preview(payload[i:i + 8]), preview(got[i:i + 8])))
        if compressed is not None and compressed != self.last_compressed:
            raise Failure("%s echo of %d bytes came back %s, expected %s"
                          % (OP_NAMES[opcode], len(payload),
                             "compressed" if self.last_compressed else "uncompressed",
                             "compressed" if compressed else "uncompressed"))
        if single_frame and count != 1:
            raise Failure("message of %d bytes came back in %d frames, expected one"
                          % (len(payload), count))
        return count

    def expect_text(self, payload, **kw):
        return self.expect_message(payload, OP_TEXT, **kw)

    def expect_binary(self, payload, **kw):
        return self.expect_message(payload, OP_BINARY, **kw)

    def expect_pong(self, payload=b"", timeout=None):
        """The next frame is a pong carrying `payload`."""
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        f = self._next(self._deadline(timeout), "a pong")
        if f.opcode != OP_PONG:
            raise Failure("expected a pong with %s, got %s" % (preview(payload), describe(f)))
        if f.payload != payload:
            raise Failure("pong payload is %s, expected %s" % (preview(f.payload), preview(payload)))

    def expect_pongs_for(self, payloads, timeout=None):
        """Pongs for a run of pings sent back to back. RFC 6455 section 5.5.3
        lets an endpoint answer only the most recent of several pending pings,
        so the pongs must be an in-order subsequence of `payloads` that ends
        with the last one. Returns how many came."""
        deadline = self._deadline(timeout)
        index = 0
        count = 0
        last = len(payloads) - 1
        while True:
            f = self._next(deadline, "pongs for %d pings" % len(payloads))
            if f.opcode != OP_PONG:
                raise Failure("expected pongs, got %s after %d pongs" % (describe(f), count))
            while index <= last and payloads[index] != f.payload:
                index += 1
            if index > last:
                raise Failure("pong %s matches no outstanding ping, or came out of order"
                              % preview(f.payload))
            count += 1
            if index == last:
                return count
            index += 1

    def expect_close(self, codes=1000, timeout=None, reply=True, allow_reason=True):
        """The next frame is a close with one of `codes` (an int, or a
        collection that may hold NO_STATUS for an empty payload), and after it
        the server closes the TCP connection. Unless `reply` is False a close
        frame is sent back first, completing the handshake. Returns the code."""
        if isinstance(codes, int) or codes is NO_STATUS:
            codes = [codes]
        codes = list(codes)
        deadline = self._deadline(timeout)
        wanted = "close %s" % describe_codes(codes)
        f = self._next(deadline, wanted)
        if f.opcode != OP_CLOSE:
            raise Failure("expected %s, got %s" % (wanted, describe(f)))
        if len(f.payload) == 1:
            raise Failure("server sent a close frame with a 1-byte payload")
        code = f.close_code()
        if code not in codes:
            raise Failure("expected %s, got %s" % (wanted, describe(f)))
        if not is_valid_utf8(f.close_reason()):
            raise Failure("server's close reason is not valid UTF-8")
        if not allow_reason and f.close_reason():
            raise Failure("unexpected close reason %s" % preview(f.close_reason()))
        if reply and not self.closed_sent:
            self.closed_sent = True
            # Echo the code where it is one an endpoint may send.
            sendable = code is not NO_STATUS and (code in (1000, 1001, 1002, 1003, 1007, 1008,
                                                           1009, 1010, 1011)
                                                  or 3000 <= code <= 4999)
            self.send(close(code if sendable else 1000))
        self.expect_eof(deadline=deadline, after="the close frame")
        return code

    def expect_reply_or_close(self, payload, opcode, codes, timeout=None):
        """For a case where RFC 6455 allows either outcome: the reply (a pong
        when `opcode` is OP_PONG, otherwise the echoed message), or a close
        with one of `codes`. Returns "reply" or "close"."""
        f = self.peek_frame(timeout, "a %s or a close" % OP_NAMES[opcode])
        if f.opcode == OP_CLOSE:
            self.expect_close(codes, timeout=timeout)
            return "close"
        if opcode == OP_PONG:
            self.expect_pong(payload, timeout=timeout)
        else:
            self.expect_message(payload, opcode, timeout=timeout)
        return "reply"

    def expect_eof(self, timeout=None, deadline=None, after=None):
        """The server closes the TCP connection without sending another frame."""
        if deadline is None:
            deadline = self._deadline(timeout)
        try:
            f = self.read_frame(deadline=deadline)
        except TimeoutError:
            raise Failure("server did not close the TCP connection%s"
                          % (" after " + after if after else ""))
        if f is not None:
            raise Failure("expected the connection to end%s, got %s"
                          % (" after " + after if after else "", describe(f)))

    def expect_drop(self, timeout=None):
        """The server drops the TCP connection (FIN or reset) without sending
        another frame."""
        self.expect_eof(timeout=timeout)

    def send_close(self, code=NO_STATUS, reason=b"", **kw):
        self.closed_sent = True
        self.send(close(code, reason, **kw))

    def roundtrip(self, payload=b"ok", timeout=None):
        """Sends a text message and expects its echo: proof the connection is
        still open and the server processed everything sent before it."""
        self.send(text(payload))
        self.expect_text(payload, timeout=timeout)

    def finish(self, timeout=None):
        """Closes cleanly: sends close 1000 and expects the server's close."""
        self.send_close(1000)
        self.expect_close([1000], timeout=timeout)
