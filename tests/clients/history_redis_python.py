#!/usr/bin/python3
"""Rooms with history across chat processes on one real redis-server, with
Python `websockets` clients: a client that read messages 1-3 on process A
and reconnects to process B (or to A restarted) with ?since=3&epoch=E gets
exactly 4-10 in its history reply, then live ones; a wrong epoch gets
"recovered": false; Redis restarted with its data gone begins a new epoch,
and a client from before is told; offsets are the same on every process.

Needs redis-server and redis-cli (Debian package redis-server).

Usage: /usr/bin/python3 tests/clients/history_redis_python.py path/to/mallard_chat
"""

import asyncio
import tempfile

from harness import Failure, Server, check, main, run_steps
from history_python import ChatClient, offsets, say_and_see
from redis_python import RedisServer, children, poll

NAME = "history_redis_python"
STEP_SECONDS = 60
LINK_TIMEOUT = 15  # seconds for the processes' Redis links to come back
# The chat's presence_heartbeat is 1 s: a dead process's key expires after
# 3 s and the next sweep (each second) clears its members: 4 s, plus slack
# for a loaded machine.
PRESENCE_BOUND = 6


async def test(chat_binary):
    directory = tempfile.mkdtemp(prefix="mallard-history-redis-")
    redis = RedisServer(directory)
    servers = []

    async def chat(label):
        server = Server(chat_binary, "--redis", redis.url, label=label)
        servers.append(server)
        await server.start()
        return server

    async def numbered_echo(client, text):
        """Sends until the echo carries an offset (the links are up)."""
        async def numbered():
            await client.say(text)
            echo = await client.next_of("message")
            return echo if "offset" in echo else None
        return await poll(numbered, LINK_TIMEOUT, lambda: "no numbered echo: Redis links down")

    try:
        await redis.start()
        a = await chat("A")
        b = await chat("B")

        async def recovers_on_another_process_and_a_restarted_one():
            nonlocal a
            reader = await ChatClient(a, "r1", "ann").open()
            writer = await ChatClient(b, "r1", "bob").open()
            first = await numbered_echo(writer, "m1")
            check(first["offset"] == 1, f"the first message is offset 1: {first}")
            await say_and_see(writer, ["m2", "m3"])
            seen = [await reader.next_of("message") for _ in range(3)]
            check(offsets(seen) == [1, 2, 3] and [m["text"] for m in seen] == ["m1", "m2", "m3"],
                  f"ann reads 1-3 on A with the offsets B's echoes carry: {seen}")
            epoch = reader.history["epoch"]
            check(epoch and epoch == writer.history["epoch"],
                  f"one epoch on both processes: {epoch} and {writer.history['epoch']}")
            await reader.close()
            await say_and_see(writer, [f"m{n}" for n in range(4, 11)])

            moved = await ChatClient(b, "r1", "ann", since=3, epoch=epoch).open()
            check(moved.history.get("recovered") is True, f"recovered on B: {moved.history}")
            check(offsets(moved.history["messages"]) == list(range(4, 11)),
                  f"exactly 4-10 on B: {offsets(moved.history['messages'])}")
            check([m["text"] for m in moved.history["messages"]] == [f"m{n}" for n in range(4, 11)],
                  "their texts, in order")
            await writer.say("m11")
            live = await moved.next_of("message")
            check(live.get("offset") == 11, f"then live ones: {live}")
            await moved.close()

            status = await a.terminate()
            check(status == 0, f"A exits 0 on SIGTERM, not {status}")
            a = await chat("A again")
            back = await ChatClient(a, "r1", "ann", since=3, epoch=epoch).open()
            check(back.history.get("recovered") is True, f"recovered on A restarted: {back.history}")
            check(offsets(back.history["messages"]) == list(range(4, 12)),
                  f"exactly 4-11 on A restarted: {offsets(back.history['messages'])}")
            await writer.say("m12")
            live = await back.next_of("message")
            check(live.get("offset") == 12 and live.get("text") == "m12", f"then live: {live}")

            stranger = await ChatClient(a, "r1", "cy", since=3, epoch="0123456789abcdef").open()
            check(stranger.history.get("recovered") is False, "a wrong epoch is not recovered")
            check(stranger.history.get("epoch") == epoch, "and is told the room's epoch")
            check(offsets(stranger.history["messages"]) == list(range(1, 13)),
                  f"with the room's last messages: {offsets(stranger.history['messages'])}")
            for c in (back, writer, stranger):
                await c.close()

        async def redis_losing_its_data_begins_a_new_epoch():
            ann = await ChatClient(a, "r2", "ann").open()
            before = await numbered_echo(ann, "before")
            old_epoch = (await ChatClient(b, "r2", "peek").open()).history["epoch"]
            await ann.close()
            await redis.kill()
            await redis.start()  # same port, nothing kept
            bob = await ChatClient(b, "r2", "bob").open()
            after = await numbered_echo(bob, "after")
            check(after["offset"] == 1, f"the new history begins at 1: {after}")
            back = await ChatClient(a, "r2", "ann", since=before["offset"], epoch=old_epoch).open()
            check(back.history.get("recovered") is False,
                  f"a client from before is told: {back.history.get('recovered')}")
            new_epoch = back.history.get("epoch")
            check(new_epoch and new_epoch != old_epoch, f"a new epoch: {new_epoch} after {old_epoch}")
            check([m["text"] for m in back.history["messages"]] == ["after"],
                  f"and gets the new history: {back.history['messages']}")
            await back.close()
            await bob.close()

        async def presence_across_three_processes():
            c = await chat("C")
            x = await ChatClient(a, "p1", "x").open()
            y = await ChatClient(b, "p1", "y").open()
            z = await ChatClient(c, "p1", "z").open()

            async def lists(client, names):
                """The next presence message listing exactly `names`."""
                while True:
                    message = await client.next_of("presence")
                    if sorted(message["members"]) == sorted(names):
                        return
            for client in (x, y, z):  # each process lists every process's members
                await lists(client, ["x", "y", "z"])
            started = asyncio.get_running_loop().time()
            c.proc.kill()  # SIGKILL: no goodbye
            await c.proc.wait()
            for client in (x, y):
                await lists(client, ["x", "y"])
            took = asyncio.get_running_loop().time() - started
            check(took <= PRESENCE_BOUND,
                  f"z left the lists {took:.1f} s after its process died (bound {PRESENCE_BOUND} s)")
            print(f"  z left the other processes' lists {took:.1f} s after SIGKILL", flush=True)
            for client in (x, y):
                await client.close()

        return await run_steps(NAME, [
            ("a client reconnecting to another process, or to a restarted one, gets exactly "
             "the messages it missed; a wrong epoch is told", recovers_on_another_process_and_a_restarted_one,
             STEP_SECONDS),
            ("Redis restarted with its data gone: a new epoch, and a client from before is told",
             redis_losing_its_data_begins_a_new_epoch, STEP_SECONDS),
            ("presence across three processes: every list is whole, and the members of a "
             "process killed with SIGKILL leave the others' lists within "
             f"{PRESENCE_BOUND} s", presence_across_three_processes, STEP_SECONDS),
        ])
    finally:
        for server in servers:
            await server.kill()
        await redis.kill()
        children.clear()


if __name__ == "__main__":
    main(NAME, test)
