#!/usr/bin/python3
"""The Prometheus metrics of the example servers, scraped while real clients
(Python `websockets`) make known traffic: parsed with the Prometheus client's
own parser, checked for exact counts, and linted by `promtool check metrics`.

Usage: /usr/bin/python3 tests/clients/metrics_python.py ECHO_BINARY CHAT_BINARY
"""

import asyncio
import json
import shutil
import subprocess
import sys
import time

from websockets.exceptions import InvalidStatusCode

from harness import Failure, Scrape, Server, check, connect, http_get as get, run_steps

NAME = "metrics_python"
SETTLE_TIMEOUT = 5  # seconds for a gauge to reach its value (closes, samples)


async def scrape(server):
    status, content_type, text = await get(server.http_url + "/metrics")
    check(status == 200, f"/metrics answered {status}")
    check(content_type == "text/plain; version=0.0.4; charset=utf-8",
          f"/metrics content type {content_type!r}")
    return Scrape(text)


async def until(server, condition, what):
    """Scrapes until `condition(scrape)` holds (the server counts a close
    when it has processed it, and samples queues ten times a second)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        current = await scrape(server)
        if condition(current):
            return current
        if time.monotonic() > deadline:
            raise Failure(f"{what}: not within {SETTLE_TIMEOUT} s; last scrape:\n" +
                          "\n".join(l for l in current.text.splitlines()
                                    if l.startswith("mallard_")))
        await asyncio.sleep(0.05)


def http_url(server):
    return f"http://127.0.0.1:{server.port}"


async def test(echo_binary, chat_binary):
    echo = Server(echo_binary, "--exact", label="echo")
    chat = Server(chat_binary, label="chat")
    try:
        await echo.start()
        await chat.start()
        echo.http_url = http_url(echo)
        chat.http_url = http_url(chat)

        async def counters_match_the_traffic():
            before = await scrape(echo)
            check(before.value("mallard_connections_opened_total", route="echo") == 0,
                  "a fresh server has opened nothing")
            clients = [await connect(echo.base_url + "/ws/echo") for _ in range(5)]
            messages = bytes_sent = 0
            for i, ws in enumerate(clients):
                for n in range(i + 1):
                    text = "m" * (10 * (i + 1) + n)
                    await ws.send(text)
                    check(await ws.recv() == text, "echoed")
                    messages += 1
                    bytes_sent += len(text)
                await ws.send(b"\x00\x01\x02")  # binary too
                check(await ws.recv() == b"\x00\x01\x02", "echoed binary")
                messages += 1
                bytes_sent += 3
            during = await until(echo, lambda s: s.value("mallard_connections_open", route="echo") == 5,
                                 "5 connections open")
            check(during.value("mallard_connections_opened_total", route="echo") == 5,
                  "5 opened")
            for ws in clients[:3]:
                await ws.close(code=1000)
            for ws in clients[3:]:
                await ws.close(code=4001, reason="done")
            after = await until(echo, lambda s: s.value("mallard_connections_open", route="echo") == 0
                                and s.value("mallard_send_queue_depth_bytes_count", route="echo") == 0,
                                "every connection closed and sampled")
            expect = {
                "mallard_connections_opened_total": 5,
                "mallard_received_messages_total": messages,
                "mallard_received_bytes_total": bytes_sent,
                "mallard_sent_messages_total": messages,
                "mallard_sent_bytes_total": bytes_sent,
                "mallard_send_queue_bytes": 0,
            }
            for name, value in expect.items():
                got = after.value(name, route="echo")
                check(got == value, f"{name} is {got}, expected {value}")
            closes = {(dict(l)["code"], dict(l)["cause"]): v for (n, l), v in after.samples.items()
                      if n == "mallard_connections_closed_total"}
            check(closes == {("1000", "peer_closed"): 3, ("4001", "peer_closed"): 2},
                  f"closes by code and cause: {closes}")
            check(after.total("mallard_handler_exceptions_total") == 0, "no exceptions")

        async def refusals_are_counted_by_status():
            before = await scrape(echo)
            try:
                await connect(echo.base_url + "/ws/nowhere")
                raise Failure("an upgrade to no route was accepted")
            except InvalidStatusCode as exc:
                check(exc.status_code == 404, f"expected 404, got {exc.status_code}")
            after = await scrape(echo)
            got = after.value("mallard_upgrades_refused_total", status="404") - \
                before.value("mallard_upgrades_refused_total", status="404")
            check(got == 1, f"404 refusals went up by {got}, expected 1")

        async def promtool_finds_no_problem():
            promtool = shutil.which("promtool")
            check(promtool is not None, "promtool is not installed (Debian's prometheus package)")
            for server in (echo, chat):
                text = (await scrape(server)).text
                result = await asyncio.to_thread(
                    subprocess.run, [promtool, "check", "metrics"], input=text,
                    capture_output=True, text=True, timeout=30)
                check(result.returncode == 0 and result.stdout.strip() == "" and
                      result.stderr.strip() == "",
                      f"promtool check metrics: exit {result.returncode}: "
                      f"{result.stdout}{result.stderr}")

        async def types_are_declared():
            current = await scrape(echo)
            expected = {
                "mallard_connections_open": "gauge",
                "mallard_connections_opened": "counter",
                "mallard_connections_closed": "counter",
                "mallard_received_messages": "counter",
                "mallard_sent_bytes": "counter",
                "mallard_send_queue_depth_bytes": "histogram",
                "process_resident_memory_bytes": "gauge",
                "process_cpu_seconds": "counter",
            }
            for name, kind in expected.items():
                check(current.types.get(name) == kind,
                      f"{name} has type {current.types.get(name)}, expected {kind}")

        async def groups_and_members_are_counted():
            room = lambda r, n: chat.base_url + f"/ws/chat/{r}?name={n}"
            clients = [await connect(room("a", "ann")), await connect(room("a", "bob")),
                       await connect(room("a", "cy")), await connect(room("b", "dee"))]
            for ws in clients:  # each has its history: it has joined
                check(json.loads(await ws.recv())["type"] == "history", "history first")
            joined = await until(chat, lambda s: s.value("mallard_group_members") == 4,
                                 "4 members")
            check(joined.value("mallard_groups") == 2, f"groups {joined.value('mallard_groups')}")
            before = joined.value("mallard_group_publishes_total", route="chat")
            for ws in clients:
                await ws.send(json.dumps({"type": "message", "text": "hi"}))
            await until(chat, lambda s: s.value("mallard_group_publishes_total", route="chat") ==
                        before + 4, "each message published to its room")
            for ws in clients:
                await ws.close()
            await until(chat, lambda s: s.value("mallard_group_members") == 0 and
                        s.value("mallard_groups") == 0 and
                        s.value("mallard_connections_open", route="chat") == 0,
                        "everyone left")

        async def process_figures_are_the_servers():
            current = await scrape(echo)
            check(current.value("process_resident_memory_bytes") > 1 << 20, "resident memory")
            check(current.value("process_open_fds") >= 3, "open descriptors")
            check(current.value("process_max_fds") >= current.value("process_open_fds"),
                  "max descriptors")
            started = current.value("process_start_time_seconds")
            check(abs(started - time.time()) < 600, f"start time {started} is not recent")

        async def status_page_is_served():
            status, content_type, body = await get(chat.http_url + "/status")
            check(status == 200 and content_type == "text/html; charset=utf-8",
                  f"/status answered {status} {content_type}")
            check('const metricsPath = "/metrics";' in body, "the page reads /metrics")

        return await run_steps(NAME, [
            ("counters match the clients' traffic exactly, gauges return to 0",
             counters_match_the_traffic),
            ("upgrades refused are counted by HTTP status", refusals_are_counted_by_status),
            ("every metric has its type", types_are_declared),
            ("groups and memberships are counted and return to 0", groups_and_members_are_counted),
            ("the process figures are the server's", process_figures_are_the_servers),
            ("the status page is served", status_page_is_served),
            ("promtool check metrics finds no problem", promtool_finds_no_problem, 60),
        ])
    finally:
        await echo.kill()
        await chat.kill()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(f"usage: {sys.argv[0]} ECHO_BINARY CHAT_BINARY", file=sys.stderr)
        sys.exit(2)
    try:
        status = asyncio.run(test(sys.argv[1], sys.argv[2]))
    except (Failure, OSError) as exc:
        print(f"FAIL {NAME}: {exc}", flush=True)
        status = 1
    sys.exit(status)
