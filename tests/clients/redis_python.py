#!/usr/bin/python3
"""Redis scale-out test for the mallard_chat example (--redis URL), using the
`websockets` library and a private redis-server started for each step.

What is tested:
  - two processes on one Redis carry a room between them, in order, and keep
    other rooms apart; a process does not deliver its own messages twice;
  - three processes publishing at once: every client sees each publisher's
    messages exactly once and in that publisher's order;
  - Redis stopped (SIGSTOP) during traffic: both processes notice within
    the PING timeout and log it, local delivery never stops, publishes made
    meanwhile are dropped (not held until Redis wakes), and the links come
    back after SIGCONT;
  - Redis killed and restarted during traffic: local delivery never stops,
    the link is restored and rooms resubscribed, messages published while
    Redis was down are dropped for other processes and never replayed, and
    the process logs how many publishes reached local members only;
  - 1,000 rooms with churn: the Redis subscriptions follow exactly the rooms
    that have a local member, down to none;
  - wrong and right Redis passwords, an unreachable Redis, a peer that is not
    Redis (garbage, or silence): errors are logged, the link keeps retrying,
    local chat works, SIGTERM exits 0;
  - bad --redis URLs are refused at start, naming the bad part.

Needs the redis-server and redis-cli binaries (Debian package redis-server);
the system Redis, if any, is never touched.

Usage: /usr/bin/python3 tests/clients/redis_python.py path/to/mallard_chat
"""

import asyncio
import collections
import inspect
import json
import random
import re
import resource
import shutil
import signal
import socket
import tempfile

from websockets.exceptions import ConnectionClosed

from harness import (SHUTDOWN_TIMEOUT, Failure, Server, check, connect, main, run_steps,
                     scrape_metrics)

NAME = "redis_python"
CHAT_PATH = "/ws/chat/"
CHANNEL_PREFIX = "mallard:room:"   # the Redis channel of room R is mallard:room:R
REDIS_START_TIMEOUT = 10           # seconds for a fresh redis-server to answer PING
REDIS_CLI_TIMEOUT = 5              # seconds for one redis-cli command
POLL_INTERVAL = 0.05               # seconds between two looks at an observable state
SUBSCRIBE_TIMEOUT = 15             # seconds for a process to (re)subscribe a room
RECEIVE_TIMEOUT = 15               # seconds for expected chat messages to arrive
LOG_TIMEOUT = 10                   # seconds for an expected stderr line
RECONNECT_TIMEOUT = 15             # seconds for cross-process delivery after a Redis restart
PROBE_INTERVAL = 0.2               # seconds between probes while waiting for that
CHANNELS_TIMEOUT = 20              # seconds for PUBSUB CHANNELS to match the open rooms
SETUP_ERROR_TIMEOUT = 10           # seconds for a bad --redis URL to make the process exit
# A message sent by the second client after all of the first's: once it is
# back, anything delivered twice (e.g. a process's own message from Redis)
# would have arrived, since Redis delivers a channel's messages in order.
QUIET_TIMEOUT = 10

# Step sizes.
ONE_ROOM_MESSAGES = 100
PER_PUBLISHER_MESSAGES = 50
RESTART_BATCH = 20     # messages per phase in the Redis restart step
GROUPS = 1000
GROUPS_CLOSED = 500
GROUPS_NEW = 200
GROUPS_REOPENED = 100
OPEN_BATCH = 100       # clients connected at once, so a loaded box keeps up
GARBAGE = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
# A process may open more than one connection at once (e.g. one to PUBLISH and
# one to SUBSCRIBE), each failing on its own: only a third attempt (or a third
# "cannot connect" line) proves that it retries.
RETRY_EVIDENCE = 3

STEP_SECONDS = 45      # generous: the script also runs against an ASan build
CHURN_SECONDS = 90

# Every child process and fake server, so that the outer finally stops them
# even when a step fails or times out half-way.
children = []


def free_port():
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def poll(condition, timeout, describe):
    """Polls `condition` (a function, plain or async) every POLL_INTERVAL until
    it returns a true value, which is returned; after `timeout` seconds raises
    Failure with `describe()`, which may use the last value seen."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() >= deadline:
            raise Failure(describe())
        await asyncio.sleep(POLL_INTERVAL)


class RedisServer:
    """A private redis-server on its own port, no persistence."""

    def __init__(self, directory, password=None):
        self.directory = directory
        self.password = password
        self.port = free_port()
        self.proc = None
        self.output = collections.deque(maxlen=20)  # its last log lines, for errors
        self._drain = None
        children.append(self)

    @property
    def url(self):
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}"

    async def start(self):
        """Starts (or restarts, on the same port) and waits for PING."""
        extra = ["--requirepass", self.password] if self.password else []
        self.proc = await asyncio.create_subprocess_exec(
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", self.directory,
            "--loglevel", "warning", *extra,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        self._drain = asyncio.create_task(self._keep_output(self.proc))

        async def answers():
            if self.proc.returncode is not None:
                raise Failure(f"redis-server on port {self.port} exited with code "
                              f"{self.proc.returncode}: {list(self.output)}")
            try:
                return (await self.cli("PING")).strip() == "PONG"
            except Failure:
                return False  # not listening yet
        await poll(answers, REDIS_START_TIMEOUT,
                   lambda: f"redis-server on port {self.port} did not answer PING within "
                           f"{REDIS_START_TIMEOUT} s: {list(self.output)}")

    async def _keep_output(self, proc):
        async for line in proc.stdout:
            self.output.append(line.decode(errors="replace").rstrip())

    async def kill(self):
        """SIGKILL: Redis vanishes without a goodbye, as in a crash."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        if self._drain is not None:
            self._drain.cancel()

    def pause(self):
        """SIGSTOP: Redis keeps its sockets but answers nothing, as a hung host."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGCONT)

    async def cli(self, *command):
        """Runs one redis-cli command; returns its raw output."""
        auth = ["-a", self.password, "--no-auth-warning"] if self.password else []
        proc = await asyncio.create_subprocess_exec(
            "redis-cli", "-h", "127.0.0.1", "-p", str(self.port), *auth, "--raw", *command,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), REDIS_CLI_TIMEOUT)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise Failure(f"redis-cli {' '.join(command)} took over {REDIS_CLI_TIMEOUT} s") from None
        text = out.decode(errors="replace")
        if proc.returncode != 0 or "Could not connect" in text + err.decode(errors="replace"):
            raise Failure(f"redis-cli {' '.join(command)} failed: {text.strip()} "
                          f"{err.decode(errors='replace').strip()}")
        return text

    async def numsub(self, room):
        """How many connections (= processes) are subscribed to the room's channel."""
        lines = (await self.cli("PUBSUB", "NUMSUB", CHANNEL_PREFIX + room)).split()
        check(len(lines) == 2 and lines[1].isdigit(), f"odd PUBSUB NUMSUB output: {lines}")
        return int(lines[1])

    async def wait_numsub(self, room, count):
        last = [None]

        async def reached():
            last[0] = await self.numsub(room)
            return last[0] == count
        await poll(reached, SUBSCRIBE_TIMEOUT,
                   lambda: f"{CHANNEL_PREFIX}{room} has {last[0]} subscribers after "
                           f"{SUBSCRIBE_TIMEOUT} s, expected {count}")

    async def subscribed_rooms(self):
        """The rooms of every mallard channel with at least one subscriber."""
        out = await self.cli("PUBSUB", "CHANNELS", CHANNEL_PREFIX + "*")
        return {line[len(CHANNEL_PREFIX):] for line in out.split() if line}


class ChatClient:
    """A chat client; a background task keeps every message the server sends."""

    def __init__(self, ws, room, name):
        self.ws = ws
        self.room = room
        self.name = name
        self.received = []       # parsed JSON messages after the history
        self.closed = False
        self._arrived = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, server, room, name, **kwargs):
        ws = await connect(f"{server.base_url}{CHAT_PATH}{room}?name={name}", **kwargs)
        try:
            first = json.loads(await asyncio.wait_for(ws.recv(), RECEIVE_TIMEOUT))
        except BaseException:
            await ws.close()
            raise
        check(first.get("type") == "history", f"{name}: first message is not the history: {first}")
        return cls(ws, room, name)

    async def _read(self):
        try:
            async for text in self.ws:
                self.received.append(json.loads(text))
                self._arrived.set()
        except ConnectionClosed:
            pass
        finally:
            self.closed = True
            self._arrived.set()

    @property
    def close_code(self):
        return self.ws.close_code

    async def send(self, text):
        await self.ws.send(json.dumps({"type": "message", "text": text}))

    def texts(self, publisher):
        """Texts of the chat messages from `publisher`, in arrival order."""
        return [m["text"] for m in self.received
                if m.get("type") == "message" and m.get("name") == publisher]

    def numbers(self, publisher, prefix):
        """The N of every "PREFIX N" text from `publisher`, in arrival order."""
        return [int(t.split()[1]) for t in self.texts(publisher)
                if t.split()[0] == prefix]

    async def arrives(self, predicate, timeout):
        """Whether `predicate()` holds for what has arrived within `timeout` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._arrived.clear()
            if predicate():
                return True
            if self.closed:
                return False
            try:
                await asyncio.wait_for(self._arrived.wait(), max(deadline - loop.time(), 0))
            except asyncio.TimeoutError:
                return predicate()

    async def wait_until(self, predicate, timeout, what):
        """Waits until `predicate()` holds for what has arrived."""
        if await self.arrives(predicate, timeout):
            return
        if self.closed:
            raise Failure(f"{self.name}: connection closed ({self.close_code}) before {what}")
        raise Failure(f"{self.name}: no {what} within {timeout} s "
                      f"({len(self.received)} messages, last {self.received[-3:]})")

    async def wait_texts(self, publisher, prefix, numbers, timeout=RECEIVE_TIMEOUT):
        """Waits until every "PREFIX N" for N in `numbers` from `publisher` is in."""
        wanted = set(numbers)
        await self.wait_until(lambda: wanted <= set(self.numbers(publisher, prefix)), timeout,
                              f"'{prefix} N' from {publisher} for all {len(wanted)} N")

    async def close(self):
        await self.ws.close()
        self._reader.cancel()


class Fixture:
    """The processes and clients of one step, all stopped when it ends."""

    def __init__(self, binary, directory):
        self.binary = binary
        self.directory = directory
        self.servers = []
        self.clients = []
        self.redis_servers = []

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        # Kill the servers first so that closing the clients does not wait on them.
        for server in self.servers:
            await server.kill()
        await asyncio.gather(*(c.close() for c in self.clients), return_exceptions=True)
        for redis in self.redis_servers:
            await redis.kill()

    async def redis(self, password=None):
        redis = RedisServer(self.directory, password)
        self.redis_servers.append(redis)
        await redis.start()
        return redis

    async def chat(self, label, redis_url):
        server = Server(self.binary, "--redis", redis_url, capture_stderr=True, label=label)
        children.append(server)
        self.servers.append(server)
        await server.start()
        return server

    async def client(self, server, room, name, **kwargs):
        client = await ChatClient.open(server, room, name, **kwargs)
        self.clients.append(client)
        return client


async def send_numbered(client, prefix, numbers):
    for n in numbers:
        await client.send(f"{prefix} {n}")


async def shutdown(server, clients=()):
    """SIGTERM: the open clients are closed with 1001 and the process exits 0."""
    check(server.proc.returncode is None,
          f"{server.label} died before SIGTERM with code {server.proc.returncode}")
    loop = asyncio.get_running_loop()
    started = loop.time()
    status = await server.terminate(SHUTDOWN_TIMEOUT)
    took = loop.time() - started
    check(status == 0, f"{server.label} exited with code {status} after SIGTERM, expected 0")
    for client in clients:
        await client.wait_until(lambda: client.closed, SHUTDOWN_TIMEOUT, "close after SIGTERM")
        check(client.close_code == 1001,
              f"{client.name}: closed with {client.close_code} on SIGTERM, expected 1001")
    print(f"  {server.label} exited 0 {took:.2f} s after SIGTERM", flush=True)


async def local_chat_works(fx, server, room):
    """Two clients of one process in one room hear each other (and themselves)."""
    x = await fx.client(server, room, "x")
    y = await fx.client(server, room, "y")
    await send_numbered(x, "local", range(3))
    await send_numbered(y, "local", range(3))
    for client in (x, y):
        for publisher in ("x", "y"):
            await client.wait_texts(publisher, "local", range(3))
            got = client.numbers(publisher, "local")
            check(got == [0, 1, 2], f"{client.name} got {got} from {publisher}, expected [0, 1, 2]")
    return [x, y]


async def relayed_room(fx, redis, room):
    """Processes A and B on `redis`; in `room`, a_sender and a_local on A and
    b_listener on B, both processes subscribed."""
    a_proc = await fx.chat("A", redis.url)
    b_proc = await fx.chat("B", redis.url)
    sender = await fx.client(a_proc, room, "a_sender")
    local = await fx.client(a_proc, room, "a_local")
    remote = await fx.client(b_proc, room, "b_listener")
    await redis.wait_numsub(room, 2)
    return a_proc, b_proc, sender, local, remote


async def wait_delivery_back(send, remote, since, what):
    """Sends one probe at a time (`send(1)` returns the numbers it sent) until
    one of a_sender's reaches `remote`; prints how long that took after
    `since` (loop time), which was `what`."""
    loop = asyncio.get_running_loop()
    probes = []

    async def probe_arrived():
        probes.extend(await send(1))
        return await remote.arrives(
            lambda: set(probes) & set(remote.numbers("a_sender", "s")), PROBE_INTERVAL)
    await poll(probe_arrived, RECONNECT_TIMEOUT,
               lambda: f"no message from A reached B within {RECONNECT_TIMEOUT} s "
                       f"of {what} ({len(probes)} probes sent)")
    print(f"  A -> B delivery back {loop.time() - since:.2f} s after {what} "
          f"({len(probes)} probes)", flush=True)


async def test(binary):
    for tool in ("redis-server", "redis-cli"):
        check(shutil.which(tool), f"{tool} not found (Debian package redis-server)")
    # A thousand clients need a thousand sockets: lift the soft limit to the hard one.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory(prefix="mallard-redis-") as directory:
        try:
            return await run(binary, directory)
        finally:
            for child in children:
                await child.kill()


async def run(binary, directory):
    def fixture():
        return Fixture(binary, directory)

    async def two_processes_one_room():
        async with fixture() as fx:
            redis = await fx.redis()
            a_proc = await fx.chat("A", redis.url)
            b_proc = await fx.chat("B", redis.url)
            a = await fx.client(a_proc, "r1", "a")
            await redis.wait_numsub("r1", 1)
            # c first: once B has subscribed r2 its link is up, so b's join
            # announcement below is not dropped for A.
            c = await fx.client(b_proc, "r2", "c")
            await redis.wait_numsub("r2", 1)
            b = await fx.client(b_proc, "r1", "b")
            await redis.wait_numsub("r1", 2)
            await a.wait_until(lambda: any(m.get("type") == "join" and m.get("name") == "b"
                                           for m in a.received),
                               RECEIVE_TIMEOUT, "join of b (from process B)")

            await send_numbered(a, "m", range(ONE_ROOM_MESSAGES))
            await b.wait_texts("a", "m", range(ONE_ROOM_MESSAGES))
            await b.send("reply 0")
            await a.wait_texts("b", "reply", [0])
            # c checks in on its own room: what B would wrongly have passed to
            # it from r1 was queued before this comes back.
            await c.send("own 0")
            await c.wait_texts("c", "own", [0])

            expected = list(range(ONE_ROOM_MESSAGES))
            got = b.numbers("a", "m")
            check(got == expected, f"b got a's messages as {got[:10]}... ({len(got)}), "
                                   f"expected 0..{ONE_ROOM_MESSAGES - 1} in order")
            got = a.numbers("a", "m")
            check(got == expected, f"a got its own messages as {got[:10]}... ({len(got)}), "
                                   f"expected 0..{ONE_ROOM_MESSAGES - 1} once each, in order")
            check(a.texts("b") == ["reply 0"], f"a got {a.texts('b')} from b, expected ['reply 0']")
            # Everything c sees is about c: its own messages and notices, and
            # member lists of r2 (c alone).
            strays = [m for m in c.received
                      if (m.get("members") if m.get("type") == "presence" else [m.get("name")])
                      != ["c"]]
            check(not strays, f"c in r2 got {len(strays)} messages of r1, first {strays[:2]}")

    async def three_processes_order_per_publisher():
        async with fixture() as fx:
            redis = await fx.redis()
            procs = [await fx.chat(label, redis.url) for label in ("A", "B", "C")]
            clients = []
            for i, proc in enumerate(procs):
                clients.append(await fx.client(proc, "r3", f"p{i}"))
                await redis.wait_numsub("r3", i + 1)
            names = [c.name for c in clients]
            numbers = range(PER_PUBLISHER_MESSAGES)
            await asyncio.gather(*(send_numbered(c, "n", numbers) for c in clients))
            for client in clients:
                for name in names:
                    await client.wait_texts(name, "n", numbers)
            # A last round once everyone has everything: any duplicate comes before it.
            await asyncio.gather(*(c.send("done 0") for c in clients))
            for client in clients:
                for name in names:
                    await client.wait_texts(name, "done", [0])
            expected = list(numbers)
            for client in clients:
                for name in names:
                    got = client.numbers(name, "n")
                    check(got == expected,
                          f"{client.name} got {name}'s messages as {got[:60]} ({len(got)}) "
                          f"(expected 0..{PER_PUBLISHER_MESSAGES - 1}, once each, in order)")

    async def redis_restart_during_traffic():
        async with fixture() as fx:
            redis = await fx.redis()
            a_proc, b_proc, sender, local, remote = await relayed_room(fx, redis, "live")
            loop = asyncio.get_running_loop()

            # One numbering across all phases: order can then be checked at the end.
            counter = iter(range(1_000_000))
            sent = collections.defaultdict(list)   # phase -> numbers sent in it

            async def send(phase, count):
                numbers = [next(counter) for _ in range(count)]
                sent[phase] += numbers
                await send_numbered(sender, "s", numbers)
                return numbers

            before = await send("before", RESTART_BATCH)
            await remote.wait_texts("a_sender", "s", before)

            await redis.kill()
            # Sent while A may not have noticed yet, then once it has.
            down = await send("down, not yet noticed", RESTART_BATCH)
            await a_proc.wait_for_stderr(r"lost the link", LOG_TIMEOUT)
            await b_proc.wait_for_stderr(r"lost the link", LOG_TIMEOUT)
            down += await send("down, noticed", RESTART_BATCH)
            # Local delivery goes on without Redis.
            await local.wait_texts("a_sender", "s", down)
            outage = await scrape_metrics(a_proc.port)
            check(outage.value("mallard_backplane_up") == 0,
                  "mallard_backplane_up is not 0 while Redis is down")
            check(outage.value("mallard_backplane_dropped_total") >= RESTART_BATCH,
                  f"mallard_backplane_dropped_total is "
                  f"{outage.value('mallard_backplane_dropped_total')} after {len(down)} "
                  f"publishes without Redis")

            await redis.start()
            await wait_delivery_back(lambda count: send("probe", count), remote, loop.time(),
                                     "restarting Redis")

            after = await send("after", RESTART_BATCH)
            await remote.wait_texts("a_sender", "s", after)
            # Everything A's clients sent reached A's local member, in order.
            every = sorted(n for numbers in sent.values() for n in numbers)
            await local.wait_texts("a_sender", "s", every)
            got_local = local.numbers("a_sender", "s")
            check(got_local == every, f"a_local got {len(got_local)} of {len(every)} messages "
                                      f"or out of order: {got_local[:60]}")

            got = remote.numbers("a_sender", "s")
            check(got == sorted(set(got)), f"B's client got A's messages out of order or twice: {got[:60]}")
            check(set(before) <= set(got), "b_listener lost messages sent before the Redis kill")
            for phase in ("down, not yet noticed", "down, noticed"):
                replayed = sorted(set(sent[phase]) & set(got))
                check(not replayed, f"messages sent while Redis was down ({phase}) reached B "
                                    f"after the restart (replayed): {replayed}")

            restored = await a_proc.wait_for_stderr(r"restored after", LOG_TIMEOUT)
            counts = [int(found.group(1)) for line in restored
                      if (found := re.search(r"\b(\d+) publish", line))]
            check(counts, f"A's 'restored' line does not count publishes: {restored}")
            check(max(counts) >= 1, f"A says {max(counts)} publishes reached local members only, "
                                    f"but it published {len(down)}+ while Redis was down: {restored}")
            await b_proc.wait_for_stderr(r"restored after", LOG_TIMEOUT)
            back = await scrape_metrics(a_proc.port)
            check(back.value("mallard_backplane_up") == 1, "mallard_backplane_up is not 1 again")
            check(back.value("mallard_backplane_reconnects_total") >= 2,  # both links
                  f"mallard_backplane_reconnects_total is "
                  f"{back.value('mallard_backplane_reconnects_total')}")
            check(back.value("mallard_backplane_published_total") >= len(before) + len(after),
                  f"mallard_backplane_published_total is "
                  f"{back.value('mallard_backplane_published_total')}")

            await asyncio.gather(shutdown(a_proc, [sender, local]), shutdown(b_proc, [remote]))

    async def redis_stopped_during_traffic():
        async with fixture() as fx:
            redis = await fx.redis()
            a_proc, b_proc, sender, local, remote = await relayed_room(fx, redis, "frozen")
            loop = asyncio.get_running_loop()
            counter = iter(range(1_000_000))

            async def send(count):
                numbers = [next(counter) for _ in range(count)]
                await send_numbered(sender, "s", numbers)
                return numbers

            before = await send(RESTART_BATCH)
            await remote.wait_texts("a_sender", "s", before)

            redis.pause()
            stopped = loop.time()
            try:
                # The default PING interval and timeout (1 s, 3 s): noticed
                # within about 4 s, without any TCP error to go by.
                await a_proc.wait_for_stderr(r"no reply from .* of a PING", LOG_TIMEOUT)
                noticed = loop.time() - stopped
                await b_proc.wait_for_stderr(r"no reply from .* of a PING", LOG_TIMEOUT)
                print(f"  A noticed the stopped Redis after {noticed:.2f} s", flush=True)
                dropped = await send(RESTART_BATCH)
                await local.wait_texts("a_sender", "s", dropped) # local delivery goes on
            finally:
                redis.resume()
            await wait_delivery_back(send, remote, loop.time(), "resuming Redis (SIGCONT)")
            after = await send(RESTART_BATCH)
            await remote.wait_texts("a_sender", "s", after)
            got = remote.numbers("a_sender", "s")
            held = sorted(set(dropped) & set(got))
            check(not held, f"messages published after A noticed the stopped Redis reached B "
                            f"once it woke up (held, not dropped): {held}")
            check(got == sorted(set(got)), f"B's client got A's messages out of order or twice: "
                                           f"{got[:60]}")
            await a_proc.wait_for_stderr(r"restored after", LOG_TIMEOUT)
            await asyncio.gather(shutdown(a_proc, [sender, local]), shutdown(b_proc, [remote]))

    async def thousand_groups_churn():
        rng = random.Random(1000)  # seeded, so that a failure can be replayed
        async with fixture() as fx:
            redis = await fx.redis()
            proc = await fx.chat("A", redis.url)
            open_clients = {}  # room -> websocket

            async def open_rooms(rooms):
                rooms = list(rooms)
                for i in range(0, len(rooms), OPEN_BATCH):
                    batch = rooms[i:i + OPEN_BATCH]
                    sockets = await asyncio.gather(
                        *(connect(f"{proc.base_url}{CHAT_PATH}{room}?name=u", open_timeout=30)
                          for room in batch))
                    open_clients.update(zip(batch, sockets))
                    # The history is sent after the join: the room is joined.
                    histories = await asyncio.gather(
                        *(asyncio.wait_for(ws.recv(), RECEIVE_TIMEOUT) for ws in sockets))
                    bad = [h for h in histories if json.loads(h).get("type") != "history"]
                    check(not bad, f"{len(bad)} clients got no history first: {bad[:1]}")

            async def close_rooms(rooms):
                rooms = list(rooms)
                for i in range(0, len(rooms), OPEN_BATCH):
                    batch = rooms[i:i + OPEN_BATCH]
                    await asyncio.gather(*(open_clients.pop(room).close() for room in batch))

            async def subscriptions_become(what):
                expected = set(open_clients)
                last = [set()]

                async def matches():
                    last[0] = await redis.subscribed_rooms()
                    return last[0] == expected

                def differences():
                    missing = sorted(expected - last[0])
                    extra = sorted(last[0] - expected)
                    return (f"{what}: after {CHANNELS_TIMEOUT} s Redis has {len(last[0])} mallard "
                            f"channels for {len(expected)} open rooms; {len(missing)} not "
                            f"subscribed {missing[:10]}, {len(extra)} still subscribed {extra[:10]}")
                await poll(matches, CHANNELS_TIMEOUT, differences)
                print(f"  {what}: {len(expected)} channels subscribed", flush=True)

            try:
                first = [f"g{i}" for i in range(GROUPS)]
                await open_rooms(first)
                await subscriptions_become(f"{GROUPS} rooms opened")
                closed = rng.sample(first, GROUPS_CLOSED)
                await close_rooms(closed)
                await open_rooms(f"g{i}" for i in range(GROUPS, GROUPS + GROUPS_NEW))
                await open_rooms(rng.sample(closed, GROUPS_REOPENED))
                await subscriptions_become(f"{GROUPS_CLOSED} closed, {GROUPS_NEW} new, "
                                           f"{GROUPS_REOPENED} reopened")
                await close_rooms(list(open_clients))
                await subscriptions_become("all closed")
                check(proc.proc.returncode is None, f"the server died with code {proc.proc.returncode}")
            finally:
                await proc.kill()
                await asyncio.gather(*(ws.close() for ws in open_clients.values()),
                                     return_exceptions=True)

    async def wrong_password():
        async with fixture() as fx:
            redis = await fx.redis(password="secret")
            wrong = await fx.chat("wrong-password", f"redis://:wrong@127.0.0.1:{redis.port}")
            lines = await wrong.wait_for_stderr(r"redis:.*(WRONGPASS|NOAUTH|invalid username-password)",
                                                LOG_TIMEOUT)
            print(f"  logged: {lines[0]}", flush=True)
            clients = await local_chat_works(fx, wrong, "pw")
            await shutdown(wrong, clients)

            right = [await fx.chat(label, redis.url) for label in ("right-1", "right-2")]
            g1 = await fx.client(right[0], "auth", "g1")
            await redis.wait_numsub("auth", 1)
            g2 = await fx.client(right[1], "auth", "g2")
            await redis.wait_numsub("auth", 2)
            await g1.send("hello 0")
            await g2.wait_texts("g1", "hello", [0])
            await g2.send("hello 1")
            await g1.wait_texts("g2", "hello", [1])
            for server in right:
                refused = server.stderr_matching(r"WRONGPASS|NOAUTH")
                check(not refused, f"{server.label} with the right password logged {refused}")

    async def unreachable_redis():
        async with fixture() as fx:
            port = free_port()  # nothing listens there
            server = await fx.chat("unreachable", f"redis://127.0.0.1:{port}")
            # Join a room first, so that the link is wanted however lazy it is.
            clients = await local_chat_works(fx, server, "alone")
            lines = await server.wait_for_stderr(r"cannot connect", LOG_TIMEOUT, count=RETRY_EVIDENCE)
            print(f"  logged: {lines[0]}", flush=True)
            check(any(str(port) in line for line in lines), f"the log does not name port {port}: {lines}")
            await send_numbered(clients[0], "still", [0])
            await clients[1].wait_texts("x", "still", [0])
            await shutdown(server, clients)

    async def garbage_redis():
        connections = []  # one per connection attempt, garbage server
        silent = []       # writers of the silent server's connections

        async def answer_garbage(reader, writer):
            connections.append(writer)
            try:
                writer.write(GARBAGE)
                await writer.drain()
                # Read until the client gives up, so that closing does not reset
                # the connection under the garbage before it is read.
                while await asyncio.wait_for(reader.read(65536), LOG_TIMEOUT):
                    pass
            except (OSError, asyncio.TimeoutError):
                pass
            finally:
                writer.close()

        async def never_answer(reader, writer):
            silent.append(writer)
            try:
                while await reader.read(65536):
                    pass
            except OSError:
                pass

        garbage_server = await asyncio.start_server(answer_garbage, "127.0.0.1", 0)
        silent_server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
        try:
            async with fixture() as fx:
                port = garbage_server.sockets[0].getsockname()[1]
                server = await fx.chat("garbage", f"redis://127.0.0.1:{port}")
                clients = await local_chat_works(fx, server, "junk")
                lines = await server.wait_for_stderr(r"does not speak RESP", LOG_TIMEOUT)
                print(f"  logged: {lines[0]}", flush=True)
                await poll(lambda: len(connections) >= RETRY_EVIDENCE, LOG_TIMEOUT,
                           lambda: f"the fake Redis saw {len(connections)} connection attempts "
                                   f"in {LOG_TIMEOUT} s, expected at least {RETRY_EVIDENCE} "
                                   f"(reconnects)")
                await send_numbered(clients[0], "still", [0])
                await clients[1].wait_texts("x", "still", [0])
                await shutdown(server, clients)

                port = silent_server.sockets[0].getsockname()[1]
                server = await fx.chat("silent", f"redis://127.0.0.1:{port}")
                clients = await local_chat_works(fx, server, "hush")
                await poll(lambda: len(silent) >= 1, LOG_TIMEOUT,
                           lambda: f"the silent fake Redis saw no connection in {LOG_TIMEOUT} s")
                # The link is now stuck on a peer that never answers: chat still works.
                await send_numbered(clients[0], "stuck", [0])
                await clients[1].wait_texts("x", "stuck", [0])
                await shutdown(server, clients)
                print(f"  garbage server: {len(connections)} connections; silent server: "
                      f"{len(silent)}", flush=True)
        finally:
            for writer in silent + connections:
                writer.close()
            for fake in (garbage_server, silent_server):
                fake.close()
                await fake.wait_closed()

    async def setup_errors():
        cases = [("http://x", "scheme"), ("redis://127.0.0.1:99999", "port"),
                 ("redis://", "host"), ("redis://h:1/abc", "database")]

        async def refused(url, word):
            proc = await asyncio.create_subprocess_exec(
                binary, "--port", "0", "--redis", url,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            try:
                out, err = await asyncio.wait_for(proc.communicate(), SETUP_ERROR_TIMEOUT)
            except asyncio.TimeoutError:
                raise Failure(f"--redis {url}: still running {SETUP_ERROR_TIMEOUT} s after "
                              f"starting") from None
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
            out = out.decode(errors="replace").strip()
            err = err.decode(errors="replace").strip()
            check("listening" not in out, f"--redis {url}: printed {out!r} before exiting")
            check(proc.returncode != 0, f"--redis {url}: exited with code 0 (stderr {err!r})")
            check(word in err.lower(), f"--redis {url}: stderr does not mention {word!r}: {err!r}")
            print(f"  --redis {url}: exit code {proc.returncode}, stderr: "
                  f"{err.splitlines()[0] if err else ''}", flush=True)

        await asyncio.gather(*(refused(url, word) for url, word in cases))

    return await run_steps(NAME, [
        ("two processes carry room r1 both ways, in order, and keep r2 apart",
         two_processes_one_room, STEP_SECONDS),
        ("three processes publishing at once: each publisher's messages once each, in order",
         three_processes_order_per_publisher, STEP_SECONDS),
        ("Redis stopped (SIGSTOP): noticed by PING within seconds, publishes dropped not held, "
         "links back after SIGCONT", redis_stopped_during_traffic, STEP_SECONDS),
        ("Redis killed and restarted during traffic: local delivery goes on, the link comes "
         "back, nothing replayed, dropped publishes counted", redis_restart_during_traffic,
         STEP_SECONDS),
        (f"{GROUPS} rooms with churn: Redis subscriptions follow the rooms with members",
         thousand_groups_churn, CHURN_SECONDS),
        ("wrong password logged, local chat and SIGTERM still fine; right password chats across",
         wrong_password, STEP_SECONDS),
        ("unreachable Redis: 'cannot connect' retried, local chat works, SIGTERM exits 0",
         unreachable_redis, STEP_SECONDS),
        ("peer that is not Redis (garbage or silence): logged, retried, no hang, exits 0",
         garbage_redis, STEP_SECONDS),
        ("bad --redis URLs exit nonzero at once, naming the bad part", setup_errors,
         STEP_SECONDS),
    ])


if __name__ == "__main__":
    main(NAME, test)
