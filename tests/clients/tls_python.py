#!/usr/bin/python3
"""TLS (wss://) client test for the mallard_echo example, using the `websockets`
library and certificates made with the `openssl` command for this run only.

Usage: /usr/bin/python3 tests/clients/tls_python.py path/to/mallard_echo
"""

import asyncio
import os
import random
import ssl
import tempfile

from harness import Failure, Server, check, check_graceful_shutdown, connect, main, run_steps
from tls_certs import make_certificates

NAME = "tls_python"
ECHO_PATH = "/ws/echo"
CLIENTS = 50
# The server drops a connection whose TLS handshake fails at once, and one whose
# handshake never completes after its 10 s handshake timeout: allow a little more.
DROP_DEADLINE = 12
SETUP_ERROR_TIMEOUT = 10  # seconds for a misconfigured server to exit


def client_context(cafile):
    """A client context that trusts only the test certificate, hostname checked."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    check(context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED,
          "the client context does not verify the server")
    return context


async def read_until_closed(reader, deadline):
    """Reads until the server closes the connection (EOF or reset); returns what
    it sent. Raises Failure if it is still open after `deadline` seconds."""
    received = bytearray()

    async def drain():
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    return "closed (EOF)"
                received.extend(chunk)
        except (ConnectionResetError, BrokenPipeError):
            return "closed (reset)"

    try:
        how = await asyncio.wait_for(drain(), deadline)
    except asyncio.TimeoutError:
        raise Failure(f"the server kept the connection open for {deadline} s "
                      f"(it sent {len(received)} bytes: {bytes(received[:40])!r})") from None
    return how, bytes(received)


async def test(binary):
    # Fresh keys for this run only, removed with the directory.
    with tempfile.TemporaryDirectory(prefix="mallard-tls-") as directory:
        try:
            certs = make_certificates(directory)
        except (OSError, RuntimeError) as exc:
            raise Failure(f"cannot make the test certificates with openssl: {exc}") from None
        return await run(binary, certs)


async def run(binary, certs):
    server = Server(binary, "--cert", certs.cert, "--key", certs.key, scheme="wss")
    setup_runs = []  # misconfigured servers started by the setup-error steps
    try:
        await server.start()
        url = server.base_url + ECHO_PATH
        plain_url = f"ws://127.0.0.1:{server.port}{ECHO_PATH}"
        context = client_context(certs.cert)
        with open(certs.cert) as f:
            expected_der = ssl.PEM_cert_to_DER_cert(f.read())

        async def wss_text_echo(text="hello"):
            async with connect(url, ssl=context) as ws:
                await ws.send(text)
                reply = await ws.recv()
                check(reply == "You sent " + text, f"expected {'You sent ' + text!r}, got {reply!r}")

        async def text_echo():
            async with connect(url, ssl=context) as ws:
                tls = ws.transport.get_extra_info("ssl_object")
                check(tls is not None, "the connection is not encrypted")
                check(tls.getpeercert(binary_form=True) == expected_der,
                      "the server presented another certificate than the one given with --cert")
                await ws.send("hello")
                reply = await ws.recv()
                check(reply == "You sent hello", f"expected 'You sent hello', got {reply!r}")

        async def binary_echo():
            payload = b"\x00\x01\xff" * 1000
            async with connect(url, ssl=context) as ws:
                await ws.send(payload)
                reply = await ws.recv()
                check(isinstance(reply, bytes), f"expected a binary reply, got {type(reply).__name__}")
                check(reply == payload, f"binary echo differs ({len(reply)} bytes back, {len(payload)} sent)")

        async def plain_client_refused():
            loop = asyncio.get_running_loop()
            started = loop.time()
            try:
                async with connect(plain_url, open_timeout=DROP_DEADLINE):
                    pass
            except asyncio.TimeoutError:
                raise Failure(f"a plain ws:// handshake on the TLS port was neither answered nor "
                              f"dropped within {DROP_DEADLINE} s") from None
            except Exception as exc:  # refused: how depends on what the server sent
                error = f"{type(exc).__name__}: {exc}"
            else:
                raise Failure("a plain ws:// client connected to the TLS port")
            print(f"  plain ws:// client failed after {loop.time() - started:.2f} s with {error}",
                  flush=True)
            await wss_text_echo("after a plain client")

        async def send_garbage(payload, label):
            loop = asyncio.get_running_loop()
            started = loop.time()
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            try:
                try:
                    writer.write(payload)
                    await writer.drain()
                except (ConnectionResetError, BrokenPipeError):
                    how, received = "closed (reset while sending)", b""
                else:
                    how, received = await read_until_closed(reader, DROP_DEADLINE)
            finally:
                writer.close()
                try:
                    await writer.wait_closed()
                except (ConnectionResetError, BrokenPipeError):
                    pass
            print(f"  {label}: {how} after {loop.time() - started:.2f} s, "
                  f"{len(received)} bytes received {received[:16]!r}", flush=True)

        async def random_bytes_dropped():
            # Seeded, so that a failure can be replayed with the same bytes.
            await send_garbage(random.Random(6455).randbytes(4096), "4 KiB of random bytes")
            await wss_text_echo("after random bytes")

        async def cleartext_http_dropped():
            request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            await send_garbage(request, "cleartext GET /")
            await wss_text_echo("after a cleartext request")

        async def concurrent_clients():
            results = await asyncio.gather(*(connect(url, ssl=context) for _ in range(CLIENTS)),
                                           return_exceptions=True)
            sockets = [r for r in results if not isinstance(r, BaseException)]
            try:
                errors = [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
                check(not errors, f"{len(errors)} of {CLIENTS} clients could not connect, first: {errors[:1]}")

                async def round_trip(i, ws):
                    await ws.send(f"client {i}")
                    return await ws.recv()

                # All connections are open at once; each sends and awaits its echo.
                replies = await asyncio.gather(*(round_trip(i, ws) for i, ws in enumerate(sockets)))
                wrong = [(i, r) for i, r in enumerate(replies) if r != f"You sent client {i}"]
                check(not wrong, f"{len(wrong)} of {CLIENTS} clients got a wrong echo, first: {wrong[:1]}")
            finally:
                await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)

        async def graceful_shutdown():
            await check_graceful_shutdown(server, ECHO_PATH, ssl=context)

        async def setup_error(cert, key, named_file, words):
            """The server exits nonzero before listening, naming the file and the problem."""
            proc = await asyncio.create_subprocess_exec(
                binary, "--port", "0", "--cert", cert, "--key", key,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            setup_runs.append(proc)
            out_task = asyncio.ensure_future(proc.stdout.read())
            err_task = asyncio.ensure_future(proc.stderr.read())
            try:
                code = await asyncio.wait_for(proc.wait(), SETUP_ERROR_TIMEOUT)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
                code = None
            out = (await out_task).decode(errors="replace")
            err = (await err_task).decode(errors="replace").strip()
            check(code is not None, f"still running {SETUP_ERROR_TIMEOUT} s after starting "
                  f"(stdout {out.strip()!r}, stderr {err!r})")
            check("listening" not in out, f"printed {out.strip()!r} before exiting")
            check(code != 0, f"exited with code 0 (stderr {err!r})")
            check(named_file in err, f"stderr does not name {named_file}: {err!r}")
            check(words.lower() in err.lower(), f"stderr does not say {words!r}: {err!r}")
            print(f"  exit code {code}, stderr: {err}", flush=True)

        async def missing_cert():
            missing = os.path.join(certs.directory, "missing_cert.pem")
            await setup_error(missing, certs.key, missing, "cannot read")

        async def mismatched_key():
            await setup_error(certs.cert, certs.other_key, certs.other_key, "does not match")

        async def expired_cert():
            await setup_error(certs.expired_cert, certs.key, certs.expired_cert, "expired")

        return await run_steps(NAME, [
            ("wss text message is answered with 'You sent hello' (certificate verified)", text_echo),
            ("wss binary message is echoed unchanged", binary_echo),
            ("plain ws:// client on the TLS port fails, wss still served", plain_client_refused),
            ("4 KiB of random bytes are dropped, wss still served", random_bytes_dropped),
            ("cleartext HTTP GET is dropped, wss still served", cleartext_http_dropped),
            (f"{CLIENTS} concurrent wss clients get their own echo", concurrent_clients),
            ("SIGTERM closes wss clients with 1001 and exits 0", graceful_shutdown),
            ("missing certificate file: nonzero exit, 'cannot read' and the path", missing_cert),
            ("key not matching the certificate: nonzero exit, 'does not match' and the path",
             mismatched_key),
            ("expired certificate: nonzero exit, 'expired' and the path", expired_cert),
        ])
    finally:
        for proc in setup_runs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        await server.kill()


if __name__ == "__main__":
    main(NAME, test)
