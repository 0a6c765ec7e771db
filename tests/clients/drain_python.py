#!/usr/bin/python3
"""A drain without a reconnect storm, with real clients (Python `websockets`):
500 connections to the echo example started with --drain-window-ms 2000
--drain-code 1012, then SIGTERM. Every client must get 1012, the closes must
be spread over the window (no more than a fifth of them in any 200 ms),
upgrades during the drain must get 503 with Retry-After, /readyz 503 while
/healthz stays 200, and the server must exit 0 after the window.

Usage: /usr/bin/python3 tests/clients/drain_python.py path/to/mallard_echo
"""

import asyncio
import signal
import time
import urllib.error
import urllib.request

from websockets.exceptions import ConnectionClosed, InvalidStatusCode

from harness import Failure, Server, check, close_code_of, connect, main, run_steps

NAME = "drain_python"
CONNECTIONS = 500
WINDOW_S = 2.0
BUCKET_S = 0.2


async def http_status(url):
    """GET `url`: (status, headers)."""
    def fetch():
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, response.headers
        except urllib.error.HTTPError as error:
            return error.code, error.headers
    return await asyncio.to_thread(fetch)


async def test(binary):
    server = Server(binary, "--threads", "2", "--drain-window-ms", str(int(WINDOW_S * 1000)),
                    "--drain-code", "1012")
    closes = []  # (seconds after SIGTERM, close code) per client
    try:
        await server.start()
        http = f"http://127.0.0.1:{server.port}"
        clients = []
        sigterm_at = None

        async def wait_for_close(ws):
            try:
                while True:
                    await ws.recv()
            except ConnectionClosed as exc:
                closes.append((time.monotonic() - sigterm_at, close_code_of(exc)))

        async def open_connections():
            for start in range(0, CONNECTIONS, 50):
                batch = await asyncio.gather(*(connect(server.base_url + "/ws/echo")
                                               for _ in range(50)))
                clients.extend(batch)
            # Each is open on the server: an echo comes back on every one.
            for ws in clients[:: CONNECTIONS // 10]:
                await ws.send("ping")
                check(await ws.recv() == "You sent ping", "echo before the drain")
            status, _ = await http_status(http + "/readyz")
            check(status == 200, f"/readyz answered {status} before the drain")

        async def drain_answers():
            nonlocal sigterm_at
            sigterm_at = time.monotonic()
            watchers = [asyncio.create_task(wait_for_close(ws)) for ws in clients]
            server.proc.send_signal(signal.SIGTERM)
            # The server says it drains as soon as it does.
            while True:
                status, headers = await http_status(http + "/readyz")
                if status == 503:
                    break
                check(time.monotonic() - sigterm_at < WINDOW_S / 2,
                      f"/readyz still {status} {WINDOW_S / 2} s after SIGTERM")
                await asyncio.sleep(0.01)
            check(time.monotonic() - sigterm_at < WINDOW_S, "the checks ran inside the window")
            status, _ = await http_status(http + "/healthz")
            check(status == 200, f"/healthz answered {status} while draining")
            try:
                await connect(server.base_url + "/ws/echo")
                raise Failure("an upgrade during the drain was accepted")
            except InvalidStatusCode as exc:
                check(exc.status_code == 503, f"an upgrade during the drain got {exc.status_code}")
                retry_after = exc.headers.get("Retry-After", "")
                check(retry_after == "5", f"the upgrade's 503 has Retry-After {retry_after!r}")
            status, headers = await http_status(http + "/readyz")
            check(status == 503 and headers.get("Retry-After") == "5",
                  f"/readyz answered {status} with Retry-After {headers.get('Retry-After')!r}")
            await asyncio.wait_for(asyncio.gather(*watchers), WINDOW_S + 10)

        async def every_client_got_1012():
            codes = {}
            for _, code in closes:
                codes[code] = codes.get(code, 0) + 1
            check(codes == {1012: CONNECTIONS}, f"close codes: {codes}")

        async def closes_are_spread():
            times = sorted(t for t, _ in closes)
            check(len(times) == CONNECTIONS, f"{len(times)} closes")
            span = times[-1] - times[0]
            check(span > WINDOW_S * 0.6, f"the closes took {span:.2f} s of a {WINDOW_S} s window")
            # The most closes in any 200 ms: a sliding window over the times.
            most, first = 0, 0
            for last in range(len(times)):
                while times[last] - times[first] > BUCKET_S:
                    first += 1
                most = max(most, last - first + 1)
            print(f"closes over {span:.2f} s, at most {most} in {BUCKET_S * 1000:.0f} ms",
                  flush=True)
            check(most <= CONNECTIONS // 5,
                  f"{most} closes within {BUCKET_S * 1000:.0f} ms (at most {CONNECTIONS // 5})")

        async def exits_cleanly():
            status = await asyncio.wait_for(server.proc.wait(), 15)
            check(status == 0, f"the server exited with {status}")

        return await run_steps(NAME, [
            (f"{CONNECTIONS} connections open, /readyz 200", open_connections, 60),
            ("SIGTERM: /readyz 503, /healthz 200, upgrades 503, every client closed",
             drain_answers, 30),
            ("every client got 1012 (service restart)", every_client_got_1012),
            ("the closes are spread over the window: at most a fifth in any 200 ms",
             closes_are_spread),
            ("the server exits 0 after the window", exits_cleanly, 20),
        ])
    finally:
        await server.kill()


if __name__ == "__main__":
    main(NAME, test)
