#!/usr/bin/python3
"""The chat example's rooms with history and presence, with Python
`websockets` clients: a client that reconnects with ?since=OFFSET&epoch=EPOCH
gets exactly the messages it missed in the history reply, then live ones; a
wrong epoch, a position the room has forgotten or a restarted server give
"recovered": false with the last messages; the member list follows joins
and leaves.

Usage: /usr/bin/python3 tests/clients/history_python.py CHAT_BINARY
"""

import asyncio
import json

from harness import Failure, Server, check, connect, main, run_steps

NAME = "history_python"
RECEIVE_TIMEOUT = 5  # seconds for an expected message
HISTORY_LENGTH = 50  # the chat example keeps each room's last 50 messages


class ChatClient:
    """One chat connection: its history reply, then everything else."""

    def __init__(self, server, room, name, since=None, epoch=None):
        url = f"{server.base_url}/ws/chat/{room}?name={name}"
        if since is not None:
            url += f"&since={since}&epoch={epoch}"
        self.url = url
        self.ws = None
        self.history = None

    async def open(self):
        self.ws = await connect(self.url).__aenter__()
        self.history = await self.next()
        check(self.history.get("type") == "history", f"first message is not the history: "
              f"{self.history}")
        return self

    async def next(self):
        try:
            return json.loads(await asyncio.wait_for(self.ws.recv(), RECEIVE_TIMEOUT))
        except asyncio.TimeoutError:
            raise Failure(f"{self.url}: nothing within {RECEIVE_TIMEOUT} s") from None

    async def next_of(self, kind):
        """The next message of type `kind`, skipping the others."""
        while True:
            message = await self.next()
            if message.get("type") == kind:
                return message

    async def say(self, text):
        await self.ws.send(json.dumps({"type": "message", "text": text}))

    async def close(self):
        await self.ws.close()


def offsets(messages):
    return [m.get("offset") for m in messages]


async def say_and_see(sender, texts):
    """Sends each text and waits for its echo; returns the echoes."""
    echoes = []
    for text in texts:
        await sender.say(text)
        echo = await sender.next_of("message")
        check(echo.get("text") == text, f"echo {echo} for {text!r}")
        echoes.append(echo)
    return echoes


async def test(chat_binary):
    chat = Server(chat_binary, label="chat")
    try:
        await chat.start()

        async def recovers_exactly_what_it_missed():
            ann = await ChatClient(chat, "r1", "ann").open()
            check(ann.history.get("recovered") is False and ann.history.get("messages") == [],
                  f"a first join recovers nothing: {ann.history}")
            epoch = ann.history.get("epoch")
            check(isinstance(epoch, str) and epoch, f"the history reply has an epoch: {ann.history}")
            bob = await ChatClient(chat, "r1", "bob").open()
            sent = await say_and_see(bob, [f"m{n}" for n in range(1, 4)])
            check(offsets(sent) == [1, 2, 3], f"messages 1-3 carry offsets 1-3: {offsets(sent)}")
            seen = [await ann.next_of("message") for _ in range(3)]
            check(offsets(seen) == [1, 2, 3], f"ann reads 1-3: {seen}")
            await ann.close()
            await say_and_see(bob, [f"m{n}" for n in range(4, 11)])

            back = await ChatClient(chat, "r1", "ann", since=3, epoch=epoch).open()
            history = back.history
            check(history.get("recovered") is True, f"recovered: {history}")
            check(history.get("epoch") == epoch, f"same epoch: {history}")
            check(offsets(history["messages"]) == list(range(4, 11)),
                  f"exactly 4-10 in the history reply: {offsets(history['messages'])}")
            check([m["text"] for m in history["messages"]] == [f"m{n}" for n in range(4, 11)],
                  f"their texts, in order: {history['messages']}")
            check(all(m.get("type") == "message" and m.get("name") == "bob"
                      for m in history["messages"]), f"whole messages: {history['messages'][0]}")
            await bob.say("m11")
            live = await back.next_of("message")
            check(live.get("offset") == 11 and live.get("text") == "m11",
                  f"then live messages: {live}")
            await back.close()
            await bob.close()

        async def not_recovered_gets_the_last_messages():
            first = await ChatClient(chat, "r2", "cy").open()
            epoch = first.history["epoch"]
            await say_and_see(first, [f"n{n}" for n in range(1, HISTORY_LENGTH + 11)])
            kept = list(range(11, HISTORY_LENGTH + 11))
            for label, since, their_epoch in [("a wrong epoch", 5, "0000000000000000"),
                                              ("a forgotten position", 5, epoch),
                                              ("a position past the end", 1000, epoch),
                                              ("no position", None, None)]:
                other = await ChatClient(chat, "r2", "dee", since=since, epoch=their_epoch).open()
                check(other.history.get("recovered") is False,
                      f"{label}: recovered false: {other.history.get('recovered')}")
                check(other.history.get("epoch") == epoch, f"{label}: the room's epoch")
                check(offsets(other.history["messages"]) == kept,
                      f"{label}: the last {HISTORY_LENGTH} messages: "
                      f"{offsets(other.history['messages'])[:3]}...")
                await other.close()
            edge = await ChatClient(chat, "r2", "dee", since=10, epoch=epoch).open()
            check(edge.history.get("recovered") is True and
                  offsets(edge.history["messages"]) == kept,
                  f"the oldest kept position still recovers: {edge.history.get('recovered')}")
            await edge.close()
            await first.close()

        async def presence_follows_joins_and_leaves():
            eve = await ChatClient(chat, "r3", "eve").open()
            check((await eve.next_of("presence")).get("members") == ["eve"], "eve alone")
            fay = await ChatClient(chat, "r3", "fay").open()
            joined = await eve.next_of("join")
            check(joined.get("name") == "fay" and joined.get("members") == 2,
                  f"eve sees fay join: {joined}")
            check((await eve.next_of("presence")).get("members") == ["eve", "fay"],
                  "eve's list has fay")
            check((await fay.next_of("presence")).get("members") == ["eve", "fay"],
                  "fay's list has eve")
            await fay.close()
            left = await eve.next_of("leave")
            check(left.get("name") == "fay" and left.get("members") == 1, f"fay left: {left}")
            check((await eve.next_of("presence")).get("members") == ["eve"], "eve alone again")
            await eve.say("hello")
            check("offset" in await eve.next_of("message"), "messages keep their offsets")
            await eve.close()

        async def a_restarted_server_begins_a_new_epoch():
            nonlocal chat
            gus = await ChatClient(chat, "r4", "gus").open()
            await say_and_see(gus, ["before"])
            epoch = gus.history["epoch"]
            await gus.close()
            status = await chat.terminate()
            check(status == 0, f"the chat exits 0 on SIGTERM, not {status}")
            chat = Server(chat_binary, label="chat")
            await chat.start()
            back = await ChatClient(chat, "r4", "gus", since=1, epoch=epoch).open()
            check(back.history.get("recovered") is False, f"not recovered: {back.history}")
            check(back.history.get("epoch") not in (None, "", epoch),
                  f"a new epoch: {back.history.get('epoch')} after {epoch}")
            check(back.history.get("messages") == [], "the new history is empty")
            await back.close()

        return await run_steps(NAME, [
            ("a client reconnecting with since=3 gets exactly 4-10 in its history reply, "
             "then live messages", recovers_exactly_what_it_missed),
            ("a wrong epoch, a forgotten position or none: recovered false with the last "
             f"{HISTORY_LENGTH} messages", not_recovered_gets_the_last_messages),
            ("the member list and join and leave notices follow the room",
             presence_follows_joins_and_leaves),
            ("a restarted server begins a new epoch and tells a client from before",
             a_restarted_server_begins_a_new_epoch),
        ])
    finally:
        await chat.kill()


if __name__ == "__main__":
    main(NAME, test)
