#!/usr/bin/python3
"""Client test for the mallard_notifications example, using `websockets`.

Usage: /usr/bin/python3 tests/clients/notifications_python.py path/to/mallard_notifications
"""

import asyncio

from harness import Server, check, check_graceful_shutdown, connect, main, run_steps

NAME = "notifications_python"
PATH = "/ws/notifications"
RECEIVE_TIMEOUT = 5  # seconds for the first three notifications at 100 ms


async def test(binary):
    server = Server(binary, "--interval-ms", "100")
    try:
        await server.start()

        async def first_three_in_order():
            ws = await connect(server.base_url + PATH)
            try:
                received = []
                async def receive_three():
                    while len(received) < 3:
                        received.append(await ws.recv())
                await asyncio.wait_for(receive_three(), RECEIVE_TIMEOUT)
                expected = [f"Notification #{n}" for n in (1, 2, 3)]
                check(received == expected, f"expected {expected}, got {received}")
            finally:
                await ws.close()
            rcvd = ws.close_rcvd
            check(rcvd is not None and rcvd.code == 1000,
                  f"expected the server to echo close code 1000, got {rcvd}")

        async def graceful_shutdown():
            await check_graceful_shutdown(server, PATH)

        return await run_steps(NAME, [
            ("'Notification #1'..'#3' arrive in order", first_three_in_order),
            ("SIGTERM closes clients with 1001 and exits 0", graceful_shutdown),
        ])
    finally:
        await server.kill()


if __name__ == "__main__":
    main(NAME, test)
