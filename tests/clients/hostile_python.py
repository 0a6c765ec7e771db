#!/usr/bin/python3
"""Hostile clients against the echo example, each checked to leave the server
serving everyone else.

- Out of file descriptors: with the server's limit low, more connections
  than it can accept are held open for a few seconds; the "accept failed"
  log line is written about once a second (with a count), not every retry,
  and once they close a new client is served at once.
- A pong flood: a client that never reads fills the server's socket with
  echoes (while the view stays far below its high-water mark), then sends
  up to 2,000,000 pings of 125 bytes; the server must stop reading from it
  (TCP pushes back) rather than hold every pong, so its memory stays within
  a few MiB (unbounded, it grew by ~250 MB), and another client is served.
- Slow uploads against a memory budget: 128 clients each send all but the
  last byte of a 1 MiB frame, slowly, to a server whose --memory-budget is
  32 MiB; reading pauses on the largest holders and some are closed with
  1013, the server's memory stays near the budget (unbounded it holds
  ~128 MiB), and another client is served meanwhile.

Usage: /usr/bin/python3 tests/clients/hostile_python.py path/to/mallard_echo
"""

import asyncio
import base64
import fcntl
import os
import select
import socket
import struct
import subprocess
import termios
import time

from harness import Failure, Server, check, connect, main, rss_kib, run_steps

NAME = "hostile_python"
# Set by the test build when the server runs under AddressSanitizer and UBSan.
SANITIZED = os.environ.get("MALLARD_SANITIZED") == "1"
SERVER_FD_LIMIT = 64   # the server's RLIMIT_NOFILE: a few dozen connections
CONNECTIONS = 120      # more than that
HOLD_SECONDS = 3.0     # how long accept keeps failing
FLOOD_PINGS = 2_000_000
# Growth allowed for the flood; unbounded it was ~250 MB. AddressSanitizer
# keeps freed memory in quarantine (up to 256 MiB), so it gets more room.
FLOOD_RSS_BOUND_KIB = (160 if SANITIZED else 64) * 1024
MIB = 1024 * 1024
BUDGET = 32 * MIB          # the budget server's --memory-budget
UPLOADERS = 128            # each holding most of a 1 MiB frame: 128 MiB unbounded
# Growth allowed over the budget: what the server reads between two of the
# budget's looks (0.1 s apart), and the allocator's slack.
BUDGET_RSS_BOUND_KIB = (160 if SANITIZED else 64) * 1024


def masked_frame(opcode, payload=b""):
    """A final client frame with a zero masking key (the payload goes as is)."""
    if len(payload) < 126:
        header = bytes([0x80 | opcode, 0x80 | len(payload)])
    else:
        header = bytes([0x80 | opcode, 0x80 | 126, len(payload) >> 8, len(payload) & 0xFF])
    return header + bytes(4) + payload


def raw_upgrade(port, path):
    """A blocking socket that has upgraded `path`; the 101 is read."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        more = s.recv(4096)
        check(more, "the server closed during the upgrade")
        answer += more
    check(answer.startswith(b"HTTP/1.1 101"), f"upgrade answered {answer[:40]!r}")
    return s


def unread_bytes(s):
    """Bytes waiting in our socket's receive queue."""
    return struct.unpack("i", fcntl.ioctl(s, termios.FIONREAD, b"\0\0\0\0"))[0]


def server_send_queue(port):
    """Bytes the server's socket on `port` holds for its client (ss's Send-Q)."""
    out = subprocess.run(["ss", "-tnH", "state", "established", f"sport = :{port}"],
                         capture_output=True, text=True, check=True).stdout.split()
    check(len(out) >= 2, f"ss shows no connection on port {port}")
    return int(out[1])


def settled_unread_bytes(s):
    """Our receive queue once it has stopped growing (five looks 50 ms apart
    that see nothing new arrive)."""
    last, still = -1, 0
    deadline = time.monotonic() + 20
    while still < 5:
        check(time.monotonic() < deadline, "the echoes never stopped arriving")
        time.sleep(0.05)  # the loop ends on what the queue shows, not on time
        now = unread_bytes(s)
        still = still + 1 if now == last else 0
        last = now
    return last


def fill_with_echoes(s, port):
    """Sends messages to echo, 512 KiB at a time, never reading the echoes,
    until the kernel holds no more of them (ours and the server's socket
    together stop growing): the server's writer is then left waiting on a
    full socket with up to 512 KiB more, in a gathered write. Its view stays
    below its high-water mark (1 MiB), so its reader goes on reading.
    Returns the bytes the kernel holds."""
    step = masked_frame(0x1, b"x" * 1000) * 512
    s.settimeout(10)
    held = 0
    for _ in range(40):
        s.sendall(step)
        now = settled_unread_bytes(s) + server_send_queue(port)
        if now - held < 400_000:  # of the ~516 KB of echoes, most did not fit
            return now
        held = now
    raise Failure(f"the kernel took {held} bytes of echoes and still more")


def send_until_blocked(s, chunk, count, seconds=2.0):
    """Sends `chunk` up to `count` times; stops once a send makes no progress
    for `seconds` (the server stopped reading). Returns how many went."""
    s.settimeout(seconds)
    sent = 0
    try:
        while sent < count:
            s.sendall(chunk)
            sent += 1
    except (socket.timeout, TimeoutError):
        pass
    return sent


def hold_partial_frames(port, count, frame_size, pid):
    """Opens `count` connections; each sends the header of a binary frame of
    `frame_size` bytes and then all of it but the last byte, 64 KiB at a
    time round the connections with a pause between rounds (a slow upload),
    until all is sent or nothing more goes for 2 s (the server paused them).
    Returns the sockets, the bytes sent, and the server's largest RSS (KiB)
    seen meanwhile."""
    sockets = [raw_upgrade(port, "/ws/echo") for _ in range(count)]
    header = struct.pack("!BBQ", 0x82, 0x80 | 127, frame_size) + bytes(4)
    for s in sockets:
        s.sendall(header)
        s.setblocking(False)
    part = frame_size - 1
    chunk = b"x" * 65536
    sent = [0] * count
    peak = rss_kib(pid)
    last_progress = time.monotonic()
    while any(n < part for n in sent) and time.monotonic() - last_progress < 2.0:
        for i, s in enumerate(sockets):
            if sent[i] < part:
                try:
                    n = s.send(chunk[:part - sent[i]])
                except BlockingIOError:
                    continue
                sent[i] += n
                last_progress = time.monotonic()
        peak = max(peak, rss_kib(pid))
        time.sleep(0.02)  # the slow sender under test, not a wait for the server
    return sockets, sum(sent), peak


def close_codes(sockets, timeout):
    """Reads what the server sends on each socket; waits until the first close
    frame has arrived (at most `timeout` s), then one more second for others.
    Returns the close codes seen, one per closed socket."""
    codes = {}
    received = {s: b"" for s in sockets}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        open_ = [s for s in sockets if s not in codes]
        if not open_:
            break
        ready, _, _ = select.select(open_, [], [], max(0.0, deadline - time.monotonic()))
        for s in ready:
            try:
                data = s.recv(65536)
            except (BlockingIOError, ConnectionError):
                data = b""
            received[s] += data
            frame = received[s]
            if len(frame) >= 4 and frame[0] == 0x88:
                codes[s] = struct.unpack("!H", frame[2:4])[0]
            elif not data:
                codes[s] = None  # closed without a close frame
        if codes and deadline - time.monotonic() > 1.0:
            deadline = time.monotonic() + 1.0
    return list(codes.values())


async def test(binary):
    server = Server(binary, "--threads", "1", capture_stderr=True, max_fds=SERVER_FD_LIMIT)
    sockets = []
    try:
        await server.start()

        async def accept_failures_are_throttled():
            for _ in range(CONNECTIONS):
                s = socket.socket()
                s.setblocking(False)
                try:
                    s.connect(("127.0.0.1", server.port))
                except BlockingIOError:
                    pass
                sockets.append(s)
            await server.wait_for_stderr("accept failed", 10)
            # The server retries every 100 ms while the descriptors are gone:
            # ~30 retries in the hold, which must make ~3 lines, not ~30.
            await asyncio.sleep(HOLD_SECONDS)  # the exhaustion under test lasts this long
            lines = server.stderr_matching("accept failed")
            check(1 <= len(lines) <= HOLD_SECONDS + 2,
                  f"{len(lines)} 'accept failed' lines in {HOLD_SECONDS} s: {lines[:5]}")
            check(any("times more since the last report" in line for line in lines),
                  f"no line counts the failures it held back: {lines[:5]}")

        async def served_again_once_they_close():
            for s in sockets:
                s.close()
            sockets.clear()
            async with connect(server.base_url + "/ws/echo") as ws:
                await ws.send("hello")
                reply = await asyncio.wait_for(ws.recv(), 5)
                check(reply == "You sent hello", f"got {reply!r}")

        async def pong_flood_is_bounded():
            before = rss_kib(server.proc.pid)
            loop = asyncio.get_running_loop()
            flooder = await loop.run_in_executor(None, raw_upgrade, server.port, "/ws/echo")
            try:
                await loop.run_in_executor(None, fill_with_echoes, flooder, server.port)
                pings = masked_frame(0x9, b"p" * 125) * 10_000
                sent = await loop.run_in_executor(
                    None, send_until_blocked, flooder, pings, FLOOD_PINGS // 10_000)
                grown = rss_kib(server.proc.pid) - before
                check(grown < FLOOD_RSS_BOUND_KIB,
                      f"the server grew by {grown} KiB for {sent * 10_000} pings")
                print(f"pong flood: {sent * 10_000} pings taken before the server stopped "
                      f"reading; it grew by {grown} KiB", flush=True)
                # Everyone else is still served.
                async with connect(server.base_url + "/ws/echo") as ws:
                    await ws.send("still there?")
                    reply = await asyncio.wait_for(ws.recv(), 5)
                    check(reply == "You sent still there?", f"got {reply!r}")
            finally:
                flooder.close()

        async def memory_budget_bounds_slow_uploads():
            budgeted = Server(binary, "--threads", "1", "--memory-budget", str(BUDGET),
                              capture_stderr=True, label="budget")
            await budgeted.start()
            loop = asyncio.get_running_loop()
            uploads = []
            try:
                before = rss_kib(budgeted.proc.pid)
                uploads, sent, peak = await loop.run_in_executor(
                    None, hold_partial_frames, budgeted.port, UPLOADERS, MIB,
                    budgeted.proc.pid)
                # Everyone else is still served.
                async with connect(budgeted.base_url + "/ws/echo") as ws:
                    await ws.send("still there?")
                    reply = await asyncio.wait_for(ws.recv(), 5)
                    check(reply == "You sent still there?", f"got {reply!r}")
                codes = await loop.run_in_executor(None, close_codes, uploads, 20)
                grown = max(peak, rss_kib(budgeted.proc.pid)) - before
                print(f"memory budget: {UPLOADERS} slow uploads sent {sent // 1024} KiB; the "
                      f"server grew by {grown} KiB at most (budget {BUDGET // 1024} KiB); "
                      f"{codes.count(1013)} closed with 1013, other closes {sorted(set(codes) - {1013})}",
                      flush=True)
                check(codes.count(1013) >= 1, f"no upload was closed with 1013: {codes}")
                check(set(codes) <= {1013}, f"uploads were closed otherwise: {codes}")
                check(grown < BUDGET // 1024 + BUDGET_RSS_BOUND_KIB,
                      f"the server grew by {grown} KiB against a budget of {BUDGET // 1024} KiB")
            finally:
                for s in uploads:
                    s.close()
                await budgeted.kill()

        steps = [
            (f"{CONNECTIONS} connections against {SERVER_FD_LIMIT} descriptors: "
             "accept failures logged about once a second", accept_failures_are_throttled),
            ("a new client is served once they close", served_again_once_they_close),
        ]
        if SANITIZED:
            # The sanitizers' runtime opens descriptors of its own to check
            # memory (UBSan's vptr check makes a pipe), and reports an error
            # when it cannot: out of descriptors, a sanitized server fails
            # for reasons of the sanitizer's. The release run covers these.
            print("skipped under the sanitizers: the descriptor exhaustion steps", flush=True)
            steps = []
        steps.append(("a pong flood from a client that never reads is not buffered",
                      pong_flood_is_bounded))
        steps.append((f"{UPLOADERS} slow uploads of 1 MiB frames against a "
                      f"{BUDGET // MIB} MiB memory budget: paused, some closed with 1013",
                      memory_budget_bounds_slow_uploads))
        return await run_steps(NAME, steps)
    finally:
        for s in sockets:
            s.close()
        await server.kill()


if __name__ == "__main__":
    main(NAME, test)
