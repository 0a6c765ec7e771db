#!/usr/bin/python3
"""Client test for the mallard_echo example, using the `websockets` library.

Usage: /usr/bin/python3 tests/clients/echo_python.py path/to/mallard_echo
"""

from websockets.exceptions import ConnectionClosed, InvalidStatusCode

from harness import Failure, Server, check, check_graceful_shutdown, close_code_of, connect, main, run_steps

NAME = "echo_python"
ECHO_PATH = "/ws/echo"
MAX_MESSAGE = 1024 * 1024  # server-side message size limit


async def test(binary):
    server = Server(binary)
    try:
        await server.start()
        url = server.base_url + ECHO_PATH

        async def text_echo():
            async with connect(url) as ws:
                await ws.send("hello")
                reply = await ws.recv()
                check(reply == "You sent hello", f"expected 'You sent hello', got {reply!r}")

        async def binary_echo():
            payload = b"\x00\x01\xff" * 1000
            async with connect(url) as ws:
                await ws.send(payload)
                reply = await ws.recv()
                check(isinstance(reply, bytes), f"expected a binary reply, got {type(reply).__name__}")
                check(reply == payload, f"binary echo differs ({len(reply)} bytes back, {len(payload)} sent)")

        async def oversized_message():
            async with connect(url) as ws:
                try:
                    await ws.send(bytes(MAX_MESSAGE + 1))
                    reply = await ws.recv()
                except ConnectionClosed as exc:
                    code = close_code_of(exc)
                    check(code == 1009, f"expected close code 1009, got {code} ({exc})")
                else:
                    raise Failure(f"server answered an oversized message ({len(reply)} bytes) instead of closing")

        async def unknown_path():
            try:
                async with connect(server.base_url + "/nope"):
                    pass
            except InvalidStatusCode as exc:
                check(exc.status_code == 404, f"expected HTTP 404, got {exc.status_code}")
            else:
                raise Failure("handshake to /nope succeeded, expected HTTP 404")

        async def client_close_code():
            ws = await connect(url)
            await ws.close(code=4000, reason="bye")
            rcvd = ws.close_rcvd
            check(rcvd is not None, "server sent no close frame in reply to ours")
            check(rcvd.code == 4000, f"expected the server to echo close code 4000, got {rcvd.code}")

        async def graceful_shutdown():
            await check_graceful_shutdown(server, ECHO_PATH)

        return await run_steps(NAME, [
            ("text message is answered with 'You sent hello'", text_echo),
            ("binary message is echoed unchanged", binary_echo),
            ("message over 1 MiB closes with 1009", oversized_message),
            ("unknown path is refused with HTTP 404", unknown_path),
            ("client close 4000 'bye' is echoed", client_close_code),
            ("SIGTERM closes clients with 1001 and exits 0", graceful_shutdown),
        ])
    finally:
        await server.kill()


if __name__ == "__main__":
    main(NAME, test)
