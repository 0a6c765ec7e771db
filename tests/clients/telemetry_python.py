#!/usr/bin/python3
"""Client test for the mallard_telemetry example: 2,000 simulated devices in
one asyncio process (Python `websockets`), the per-minute statistics checked
exactly, and a device that stops answering pings closed by the pong timeout.

Usage: /usr/bin/python3 tests/clients/telemetry_python.py path/to/mallard_telemetry
"""

import asyncio
import json
import resource
import struct
import time

from harness import (Server, check, check_graceful_shutdown, connect, main, run_steps,
                     scrape_metrics)

NAME = "telemetry_python"
DEVICES = 2000
READINGS = 3          # per device, in one message of 3 x 8 bytes
BATCH = 200           # devices connecting at once
PING_INTERVAL_MS = 300
PONG_TIMEOUT_MS = 600


def reading(seconds, value):
    """One reading as a device sends it: uint32 time, int32 value, little-endian."""
    return struct.pack("<Ii", seconds, value)


def value_of(device, k):
    """Device `device`'s k-th value: negative and positive, all distinct sums."""
    return (device * 7919 + k * 104729) % 200001 - 100000


async def ask(stats, minute):
    await stats.send(json.dumps({"type": "query", "minute": minute}))
    while True:  # published summaries may come first
        answer = json.loads(await stats.recv())
        if answer.get("type") == "minute" and answer.get("minute") == minute:
            return answer


def upgrade_request(port, path):
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n").encode()


async def test(binary):
    # Both ends hold 2,000 sockets: lift our soft limit, and the server's.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    check(hard >= DEVICES + 100, f"RLIMIT_NOFILE's hard limit {hard} is too low for {DEVICES} devices")
    server = Server(binary, "--threads", "2", "--ping-interval-ms", str(PING_INTERVAL_MS),
                    "--pong-timeout-ms", str(PONG_TIMEOUT_MS), "--grace-ms", "0")
    devices = []
    try:
        await server.start()
        # A minute that has ended and is still kept: its summary is published
        # as soon as readings for it come in.
        minute = int(time.time()) // 60 - 2

        async def devices_report():
            async def one(device):
                ws = await connect(f"{server.base_url}/ws/device/sensor-{device}",
                                   ping_interval=None)
                devices.append(ws)
                payload = b"".join(reading(minute * 60 + (device + k) % 60, value_of(device, k))
                                   for k in range(READINGS))
                await ws.send(payload)
                # The pong comes after the server has read, and counted, what
                # was sent before the ping.
                await (await ws.ping())

            for start in range(0, DEVICES, BATCH):
                await asyncio.gather(*(one(d) for d in range(start, min(start + BATCH, DEVICES))))
            check(len(devices) == DEVICES, f"{len(devices)} of {DEVICES} devices connected")

        async def aggregates_exact():
            values = [value_of(d, k) for d in range(DEVICES) for k in range(READINGS)]
            expected = {"type": "minute", "minute": minute, "count": len(values),
                        "sum": sum(values), "min": min(values), "max": max(values),
                        "devices": DEVICES}
            async with connect(f"{server.base_url}/ws/stats") as stats:
                answer = await ask(stats, minute)
                check(answer == expected, f"expected {expected}, got {answer}")
                empty = await ask(stats, minute - 1)
                check(empty == {"type": "minute", "minute": minute - 1, "count": 0, "sum": 0,
                                "devices": 0}, f"an empty minute answered {empty}")
                await stats.send("nonsense")
                error = json.loads(await stats.recv())
                check(error.get("type") == "error", f"nonsense answered {error}")

        async def summaries_published():
            # A subscriber hears a minute's summary from the server's own task
            # once the minute has changed: one more device reports.
            async with connect(f"{server.base_url}/ws/stats") as stats:
                async with connect(f"{server.base_url}/ws/device/late", ping_interval=None) as late:
                    await late.send(reading(minute * 60 + 59, 100001))
                    await (await late.ping())
                while True:
                    summary = json.loads(await stats.recv())
                    if summary.get("minute") == minute:
                        break
                check(summary["count"] == DEVICES * READINGS + 1 and summary["max"] == 100001
                      and summary["devices"] == DEVICES + 1, f"published {summary}")

        async def devices_stay_connected():
            # Ten ping intervals: every device answers (websockets does), none is closed.
            await asyncio.sleep(10 * PING_INTERVAL_MS / 1000)  # the time under test
            closed = [ws for ws in devices if ws.close_code is not None]
            check(not closed, f"{len(closed)} answering devices were closed, e.g. code "
                              f"{closed[0].close_code if closed else None}")
            scrape = await scrape_metrics(server.port)
            check(scrape.total("mallard_connections_closed_total", cause="pong_timeout") == 0,
                  "a pong timeout among answering devices")

        async def silent_device_closed():
            # Upgrades, then reads on but never answers a ping: its pongs are gone.
            loop = asyncio.get_running_loop()
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(upgrade_request(server.port, "/ws/device/silent"))
            head = await reader.readuntil(b"\r\n\r\n")
            check(head.startswith(b"HTTP/1.1 101"), f"upgrade answered {head[:40]!r}")
            first_ping = None
            close_frame = None
            while True:
                header = await reader.read(2)
                if len(header) < 2:
                    break  # the server cut the connection
                length = header[1] & 0x7F
                if length == 126:
                    length = struct.unpack(">H", await reader.readexactly(2))[0]
                payload = await reader.readexactly(length)
                opcode = header[0] & 0x0F
                if opcode == 0x9 and first_ping is None:
                    first_ping = loop.time()
                elif opcode == 0x8:
                    close_frame = payload
            ended = loop.time()
            writer.close()
            check(first_ping is not None, "no ping came")
            check(close_frame is not None and struct.unpack(">H", close_frame[:2])[0] == 1001
                  and close_frame[2:] == b"pong timeout", f"close frame {close_frame!r}")
            # The first unanswered ping's deadline, then as long again for the close frame.
            took = ended - first_ping
            check(took < 2 * PONG_TIMEOUT_MS / 1000 + 1.0,
                  f"the silent device was cut {took:.2f} s after the first ping")
            check(took >= PONG_TIMEOUT_MS / 1000 * 0.9, f"cut after only {took:.2f} s")
            # Counted when the connection's end has run, just after the cut.
            deadline = loop.time() + 5
            while True:
                scrape = await scrape_metrics(server.port)
                counted = scrape.total("mallard_connections_closed_total", route="device",
                                       code="1001", cause="pong_timeout")
                if counted >= 1 or loop.time() > deadline:
                    break
                await asyncio.sleep(0.05)
            check(counted == 1, f"pong timeouts counted: {counted}")

        async def bad_readings_closed():
            async with connect(f"{server.base_url}/ws/device/broken", ping_interval=None) as ws:
                await ws.send(b"\x01\x02\x03")
                await ws.wait_closed()
                check(ws.close_code == 1007, f"a 3-byte reading closed with {ws.close_code}")
            async with connect(f"{server.base_url}/ws/device/texter", ping_interval=None) as ws:
                await ws.send("21.5")
                await ws.wait_closed()
                check(ws.close_code == 1003, f"a text reading closed with {ws.close_code}")

        async def graceful_shutdown():
            for ws in devices:
                await ws.close()
            await check_graceful_shutdown(server, "/ws/stats")

        return await run_steps(NAME, [
            (f"{DEVICES} devices connect and report {READINGS} readings each", devices_report, 120),
            ("the minute's count, sum, min, max and devices are exact", aggregates_exact),
            ("a changed minute's summary is published to subscribers", summaries_published),
            ("devices that answer pings stay connected", devices_stay_connected),
            ("a device that stops answering is closed by the pong timeout", silent_device_closed),
            ("malformed readings close with 1007, text with 1003", bad_readings_closed),
            ("SIGTERM closes clients with 1001 and exits 0", graceful_shutdown, 60),
        ])
    finally:
        for ws in devices:
            ws.transport.abort() if ws.transport else None
        await server.kill()


if __name__ == "__main__":
    main(NAME, test)
