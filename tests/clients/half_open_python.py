#!/usr/bin/python3
"""10,000 half-open TCP connections (connected, never sending a request) do
not stop new clients from being served.

Usage: /usr/bin/python3 tests/clients/half_open_python.py path/to/mallard_echo
"""

import asyncio
import resource
import socket

from harness import Server, check, connect, main, run_steps

NAME = "half_open_python"
HALF_OPEN = 10_000


async def test(binary):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    count = min(HALF_OPEN, hard - 200)
    server = Server(binary)
    sockets = []
    try:
        await server.start()

        async def open_half_open():
            for i in range(count):
                s = socket.socket()
                s.setblocking(False)
                try:
                    s.connect(("127.0.0.1", server.port))
                except BlockingIOError:
                    pass
                sockets.append(s)
                if i % 500 == 499:
                    await asyncio.sleep(0)  # let the loop breathe; not a synchronisation
            check(len(sockets) == count, f"opened {len(sockets)} of {count}")

        async def new_client_is_served():
            async with connect(server.base_url + "/ws/echo") as ws:
                await ws.send("hello")
                reply = await asyncio.wait_for(ws.recv(), 5)
                check(reply == "You sent hello", f"got {reply!r}")

        return await run_steps(NAME, [
            (f"{count} half-open connections opened", open_half_open),
            ("a new client is still served at once", new_client_is_served),
        ])
    finally:
        for s in sockets:
            s.close()
        await server.kill()


if __name__ == "__main__":
    main(NAME, test)
