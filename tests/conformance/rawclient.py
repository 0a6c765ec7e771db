# SPDX-License-Identifier: BSL-1.0
"""A raw-socket RFC 6455 client for conformance testing.

It speaks WebSocket by hand, byte by byte, so that a test can send anything:
frames with any FIN/RSV/opcode bits, masked or not, with any length encoding
(including non-minimal ones and lengths that lie), whole, split at chosen
offsets, dribbled one byte per write, or many frames in one write. What the
server sends back is parsed strictly: a frame that breaks RFC 6455 on the
server side (masked, reserved bits, bad length encoding, ...) fails the test.

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
                 handshake=True):
        self.timeout = timeout
        self.buf = bytearray()
        self.eof = False       # the server closed (or reset) its side
        self.was_reset = False # ... with a reset rather than a FIN
        self.send_failed = None
        self.closed_sent = False
        self.received = []     # descriptions of every frame received, for reports
        self.pushed_back = []  # frames peeked at and not yet consumed
        self.response_headers = {}
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if handshake:
            self.handshake(host, port, path)

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

    def handshake(self, host, port, path):
        key = base64.b64encode(os.urandom(16))
        request = (
            b"GET " + path.encode() + b" HTTP/1.1\r\n"
            b"Host: " + ("%s:%d" % (host, port)).encode() + b"\r\n"
            b"Upgrade: websocket\r\n"
            b"Connection: Upgrade\r\n"
            b"Sec-WebSocket-Key: " + key + b"\r\n"
            b"Sec-WebSocket-Version: 13\r\n"
            b"\r\n")
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
            headers[name.strip().lower()] = value.strip()
        self.response_headers = headers
        if headers.get("upgrade", "").lower() != "websocket":
            raise Failure("101 response without 'Upgrade: websocket'")
        if "upgrade" not in [t.strip().lower() for t in headers.get("connection", "").split(",")]:
            raise Failure("101 response without 'Connection: Upgrade'")
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
        if headers.get("sec-websocket-accept") != accept:
            raise Failure("Sec-WebSocket-Accept is %r, expected %r"
                          % (headers.get("sec-websocket-accept"), accept))
        # No extension or subprotocol was offered, so none may be selected
        # (RFC 6455 section 4.1, client step 5 and 6).
        for name in ("sec-websocket-extensions", "sec-websocket-protocol"):
            if name in headers:
                raise Failure("server selected %s %r that was not offered" % (name, headers[name]))

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
        if rsv:
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
        failure (an echo server has no reason to send one here)."""
        if deadline is None:
            deadline = self._deadline(timeout)
        parts = []
        opcode = None
        count = 0
        while True:
            f = self._next(deadline, "a message")
            if f.is_control:
                raise Failure("expected a message, got %s" % describe(f))
            count += 1
            if opcode is None:
                if f.opcode == OP_CONT:
                    raise Failure("server sent a continuation frame with no message started")
                opcode = f.opcode
            elif f.opcode != OP_CONT:
                raise Failure("server started a new %s message inside a fragmented one"
                              % OP_NAMES[f.opcode])
            parts.append(f.payload)
            if f.fin:
                break
        payload = b"".join(parts)
        if opcode == OP_TEXT and not is_valid_utf8(payload):
            raise Failure("server sent a text message that is not valid UTF-8")
        return opcode, payload, count

    def expect_message(self, payload, opcode=OP_TEXT, timeout=None, single_frame=False):
        """The next frames form exactly this message. Returns the frame count."""
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
