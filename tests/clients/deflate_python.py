#!/usr/bin/python3
"""permessage-deflate (RFC 7692) interop: Python websockets with compression on
against `mallard_echo --exact`.

Usage: /usr/bin/python3 tests/clients/deflate_python.py path/to/mallard_echo
"""

from harness import Server, check, connect, main, run_steps

NAME = "deflate_python"
PATH = "/ws/echo"


async def test(binary):
    server = Server(binary, "--exact")
    try:
        await server.start()

        async def compressed_echo():
            async with connect(server.base_url + PATH, compression="deflate") as ws:
                extensions = ws.response_headers.get("Sec-WebSocket-Extensions", "")
                check("permessage-deflate" in extensions,
                      f"permessage-deflate was not accepted: {extensions!r}")
                text = "all work and no play makes jack a dull boy " * 5000
                await ws.send(text)
                check(await ws.recv() == text, "compressed text was not echoed unchanged")
                data = bytes(range(256)) * 4000
                await ws.send(data)
                check(await ws.recv() == data, "compressed binary was not echoed unchanged")
                await ws.send("small")
                check(await ws.recv() == "small", "a message under the threshold failed")

        async def no_extension_unless_offered():
            async with connect(server.base_url + PATH) as ws:
                check("Sec-WebSocket-Extensions" not in ws.response_headers,
                      "an extension was answered that was never offered")
                await ws.send("plain")
                check(await ws.recv() == "plain", "uncompressed echo failed")

        return await run_steps(NAME, [
            ("text and binary echo with permessage-deflate", compressed_echo),
            ("no extension in the answer when none is offered", no_extension_unless_offered),
        ])
    finally:
        await server.kill()


if __name__ == "__main__":
    main(NAME, test)
