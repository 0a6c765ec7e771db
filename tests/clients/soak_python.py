#!/usr/bin/python3
"""Soak test: a mixed load against the echo example (--exact) and the chat
example at once, for MALLARD_SOAK_SECONDS (default 60), then checks that
both servers are back where they started.

The load: on each server a few dozen clients, each running one behaviour
after another, picked at random (seeded):
  echo  clean close after messages of 0-4 KiB; FIN after three echoes;
        RST in the middle of a frame; a slow reader (3.2 MiB of echoes read
        after a pause, a little at a time); 100 messages pipelined in one
        write; pings; a 1 MiB message in 64 KiB fragments;
  chat  join a room, send messages and get each back, leave (close); some
        leave by RST.
Each behaviour checks what it gets back (every echo whole and in order,
every pong, every chat message); a client that fails fails the test.

At the end: the servers' open descriptors are back to what they were after
a warm-up, their resident memory after malloc_trim (the examples trim on
SIGUSR1) is within RSS_TOLERANCE_KIB of it, and neither logged an error.
The figures are printed: connections served, RSS at the start, its maximum
and at the end, descriptors at the start and at the end.

Usage: /usr/bin/python3 tests/clients/soak_python.py path/to/mallard_echo path/to/mallard_chat
"""

import asyncio
import base64
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys

from harness import Failure, Server, check, connect, rss_kib

NAME = "soak_python"
SOAK_SECONDS = float(os.environ.get("MALLARD_SOAK_SECONDS", "60"))
CLIENTS_PER_SERVER = 24
BEHAVIOUR_TIMEOUT = 30     # seconds for one behaviour, under load
SETTLE_TIMEOUT = 30        # seconds for descriptors to come back (close deadlines are 10 s)
# Resident memory may stay this far above the warmed-up start after a trim:
# the allocator's arenas per thread, and pages it cannot give back.
RSS_TOLERANCE_KIB = 8 * 1024
ROOMS = ["lobby", "games", "iot", "dash"]


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def open_sockets(port, established_only=False):
    """The server's TCP connections on `port` and their states (ss); the
    listener aside."""
    out = subprocess.run(["ss", "-tnaH", f"sport = :{port}"], capture_output=True, text=True)
    found = [line.split() for line in out.stdout.splitlines()]
    return [f"{f[0]} {f[4]}" for f in found if f[0] != "LISTEN" and
            (not established_only or f[0] == "ESTAB")]


async def trimmed_rss(server):
    """Resident memory after the server has run malloc_trim (SIGUSR1)."""
    done = len(server.stderr_matching("memory trimmed"))
    server.proc.send_signal(signal.SIGUSR1)
    await server.wait_for_stderr("memory trimmed", 10, count=done + 1)
    return rss_kib(server.proc.pid)


# --- raw WebSocket frames --------------------------------------------------

def client_frame(opcode, payload=b"", fin=True):
    """A masked client frame (zero key: the payload goes as is)."""
    n = len(payload)
    first = (0x80 if fin else 0) | opcode
    if n < 126:
        header = struct.pack("!BB", first, 0x80 | n)
    elif n < 65536:
        header = struct.pack("!BBH", first, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", first, 0x80 | 127, n)
    return header + bytes(4) + payload


async def read_frame(reader):
    """(opcode, payload) of the next server frame (servers do not mask)."""
    first, second = await reader.readexactly(2)
    n = second & 0x7F
    if n == 126:
        n = struct.unpack("!H", await reader.readexactly(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", await reader.readexactly(8))[0]
    check(not second & 0x80, "a server frame is masked")
    check(first & 0x80, "the exact echo fragmented a reply")
    return first & 0x0F, await reader.readexactly(n)


async def raw_open(port, path):
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = await reader.readuntil(b"\r\n\r\n")
    check(head.startswith(b"HTTP/1.1 101"), f"upgrade answered {head[:40]!r}")
    return reader, writer


async def expect_echo(reader, opcode, payload):
    got_op, got = await read_frame(reader)
    check(got_op == opcode and got == payload,
          f"echo of a {len(payload)}-byte message: opcode {got_op}, {len(got)} bytes")


async def clean_close(reader, writer):
    writer.write(client_frame(0x8, struct.pack("!H", 1000)))
    op, payload = await read_frame(reader)
    check(op == 0x8, f"expected the close reply, got opcode {op}")
    check(await reader.read() == b"", "bytes after the close reply")
    writer.close()


def reset(writer):
    """Closes with RST (SO_LINGER 0)."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


# --- behaviours --------------------------------------------------------------

async def echo_clean(port, rng):
    async with connect(f"ws://127.0.0.1:{port}/ws/echo") as ws:
        for _ in range(rng.randint(1, 5)):
            text = "x" * rng.randint(0, 4096)
            await ws.send(text)
            check(await ws.recv() == text, "text echo differs")
            data = rng.randbytes(rng.randint(0, 4096))
            await ws.send(data)
            check(await ws.recv() == data, "binary echo differs")


async def echo_fin(port, rng):
    reader, writer = await raw_open(port, "/ws/echo")
    messages = [rng.randbytes(rng.randint(1, 2000)) for _ in range(3)]
    for m in messages:
        writer.write(client_frame(0x2, m))
        await expect_echo(reader, 0x2, m)
    writer.write_eof()  # FIN without a close frame
    check(await reader.read() == b"", "the server sent more after our FIN")
    writer.close()


async def echo_reset_mid_frame(port, rng):
    reader, writer = await raw_open(port, "/ws/echo")
    writer.write(client_frame(0x2, b"\0" * 100_000)[:rng.randint(10, 50_000)])
    await writer.drain()
    reset(writer)


async def echo_slow_reader(port, rng):
    reader, writer = await raw_open(port, "/ws/echo")
    message = rng.randbytes(64 * 1024)
    for _ in range(50):
        writer.write(client_frame(0x2, message))
    await writer.drain()
    await asyncio.sleep(0.5)  # the slow reader under test: nothing read meanwhile
    for _ in range(50):
        await expect_echo(reader, 0x2, message)
        await asyncio.sleep(0.005)
    await clean_close(reader, writer)


async def echo_pipelined(port, rng):
    reader, writer = await raw_open(port, "/ws/echo")
    messages = [b"%d" % i * rng.randint(1, 20) for i in range(100)]
    writer.write(b"".join(client_frame(0x2, m) for m in messages))
    for m in messages:
        await expect_echo(reader, 0x2, m)
    await clean_close(reader, writer)


async def echo_pings(port, rng):
    async with connect(f"ws://127.0.0.1:{port}/ws/echo") as ws:
        for i in range(5):
            waiter = await ws.ping(b"soak %d" % i)
            await asyncio.wait_for(waiter, 10)


async def echo_fragmented(port, rng):
    reader, writer = await raw_open(port, "/ws/echo")
    message = rng.randbytes(1024 * 1024)
    piece = 64 * 1024
    for at in range(0, len(message), piece):
        writer.write(client_frame(0x2 if at == 0 else 0x0, message[at:at + piece],
                                  fin=at + piece >= len(message)))
    await expect_echo(reader, 0x2, message)
    await clean_close(reader, writer)


async def chat_visit(port, rng, client_id):
    room = rng.choice(ROOMS)
    name = f"c{client_id}"
    leave_by_reset = rng.random() < 0.2
    url = f"ws://127.0.0.1:{port}/ws/chat/{room}?name={name}"
    async with connect(url) as ws:
        first = json.loads(await ws.recv())
        check(first.get("type") == "history", f"first chat message: {first}")
        for i in range(rng.randint(1, 5)):
            text = f"{name} says {i}"
            await ws.send(json.dumps({"type": "message", "text": text}))
            while True:  # others' joins, leaves and messages come in between
                got = json.loads(await asyncio.wait_for(ws.recv(), BEHAVIOUR_TIMEOUT))
                check(got.get("type") in ("message", "join", "leave", "presence"), f"chat sent {got}")
                if got.get("type") == "message" and got.get("name") == name:
                    check(got.get("text") == text, f"{name} got back {got}")
                    break
        if leave_by_reset:
            ws.transport.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            ws.transport.abort()


ECHO_BEHAVIOURS = [echo_clean, echo_fin, echo_reset_mid_frame, echo_slow_reader,
                   echo_pipelined, echo_pings, echo_fragmented]


# --- the run -----------------------------------------------------------------

class Tally:
    def __init__(self):
        self.served = 0
        self.failures = []


async def client_loop(kind, port, seed, until, tally):
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    while loop.time() < until:
        if kind == "echo":
            behaviour = rng.choice(ECHO_BEHAVIOURS)
            run = behaviour(port, rng)
            label = behaviour.__name__
        else:
            run = chat_visit(port, rng, seed)
            label = "chat_visit"
        try:
            await asyncio.wait_for(run, BEHAVIOUR_TIMEOUT)
            tally.served += 1
        except Exception as exc:  # a client that fails fails the soak
            tally.failures.append(f"{kind} {label}: {type(exc).__name__}: {exc}")
            return


async def warm_up(servers, tally):
    loop = asyncio.get_running_loop()
    until = loop.time() + 3
    await asyncio.gather(*(client_loop(kind, s.port, 1000 + i, until, tally)
                           for kind, s in servers for i in range(4)))
    check(not tally.failures, f"warm-up failed: {tally.failures[:3]}")


async def stable_fds(server):
    """The descriptor count once it has not changed for a second."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_TIMEOUT
    last, same_since = fd_count(server.proc.pid), loop.time()
    while loop.time() - same_since < 1.0 and loop.time() < deadline:
        await asyncio.sleep(0.1)  # polling /proc: there is no event for a closed socket
        now = fd_count(server.proc.pid)
        if now != last:
            last, same_since = now, loop.time()
    return last


async def settled_fds(server, baseline):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_TIMEOUT
    while True:
        now = fd_count(server.proc.pid)
        if now <= baseline or loop.time() > deadline:
            return now
        await asyncio.sleep(0.2)  # polling /proc: there is no event for a closed socket


async def soak(echo_binary, chat_binary):
    echo = Server(echo_binary, "--exact", "--threads", "2", capture_stderr=True, label="echo")
    chat = Server(chat_binary, "--threads", "2", capture_stderr=True, label="chat")
    servers = [("echo", echo), ("chat", chat)]
    try:
        for _, s in servers:
            await s.start()
        warm = Tally()
        await warm_up(servers, warm)  # caches and arenas filled: the memory baseline
        start = {}
        for kind, s in servers:
            # Descriptors of the idle server (the listener, the event loops',
            # the signal handling's) once the warm-up's connections are gone.
            fds = await stable_fds(s)
            check(not open_sockets(s.port, established_only=True),
                  f"{kind}: connections still open after the warm-up: {open_sockets(s.port)}")
            start[kind] = (await trimmed_rss(s), fds)

        tally = Tally()
        loop = asyncio.get_running_loop()
        until = loop.time() + SOAK_SECONDS
        peak = {kind: rss_kib(s.proc.pid) for kind, s in servers}

        async def sample():
            while loop.time() < until:
                for kind, s in servers:
                    peak[kind] = max(peak[kind], rss_kib(s.proc.pid))
                await asyncio.sleep(1)  # a sampling period, not a wait for the server

        await asyncio.gather(sample(), *(client_loop(kind, s.port, i, until, tally)
                                         for kind, s in servers
                                         for i in range(CLIENTS_PER_SERVER)))
        failed = list(tally.failures)
        for kind, s in servers:
            rss_start, fds_start = start[kind]
            fds_end = await settled_fds(s, fds_start)
            rss_end = await trimmed_rss(s)
            print(f"soak {kind}: {SOAK_SECONDS:.0f} s, RSS start {rss_start} KiB, max "
                  f"{peak[kind]} KiB, end {rss_end} KiB; fds start {fds_start}, end {fds_end}",
                  flush=True)
            if fds_end > fds_start:
                failed.append(f"{kind}: {fds_end} descriptors open, {fds_start} at the start; "
                              f"sockets: {open_sockets(s.port)}")
            if rss_end > rss_start + RSS_TOLERANCE_KIB:
                failed.append(f"{kind}: RSS {rss_end} KiB after the soak and a trim, "
                              f"{rss_start} KiB at the start (tolerance {RSS_TOLERANCE_KIB} KiB)")
            errors = [line for line in s.stderr_lines
                      if " error" in line or "ERROR" in line or "runtime error" in line]
            if errors:
                failed.append(f"{kind} logged errors: {errors[:3]}")
        print(f"soak: {tally.served} behaviours served ({len(tally.failures)} failed)",
              flush=True)
        check(not failed, "; ".join(failed[:5]))
    finally:
        for _, s in servers:
            await s.kill()


async def test(echo_binary, chat_binary):
    try:
        await soak(echo_binary, chat_binary)
    except Failure as exc:
        print(f"FAIL {NAME}: {exc}", flush=True)
        return 1
    print(f"PASS {NAME}", flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(f"usage: {sys.argv[0]} PATH_TO_MALLARD_ECHO PATH_TO_MALLARD_CHAT", file=sys.stderr)
        sys.exit(2)
    sys.exit(asyncio.run(test(sys.argv[1], sys.argv[2])))
