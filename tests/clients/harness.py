"""Shared helpers for the Python client tests of the mallard example servers.

Each test script starts an example binary on a free port, runs a list of
named steps against it (each under its own timeout), prints one PASS/FAIL
line per step and a closing "NAME: N passed, N failed" line, and always
kills the server on the way out.
"""

import asyncio
import re
import resource
import signal
import sys
import urllib.request

import websockets
from websockets.exceptions import ConnectionClosed

STARTUP_TIMEOUT = 20  # seconds to wait for the "listening on" line
STEP_TIMEOUT = 15     # seconds for any single step
SHUTDOWN_TIMEOUT = 10  # seconds from SIGTERM to process exit

LISTENING_RE = re.compile(r"^listening on ws://127\.0\.0\.1:(\d+)$")


def listening_re(scheme):
    """The first stdout line of a server serving `scheme` ("ws" or "wss")."""
    return re.compile(rf"^listening on {re.escape(scheme)}://127\.0\.0\.1:(\d+)$")


async def http_get(url):
    """GET `url`: (status, content type, body text)."""
    def fetch():
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    return await asyncio.to_thread(fetch)


class Scrape:
    """One scrape of /metrics, parsed by prometheus_client."""

    def __init__(self, text):
        # Imported here: only the tests that read metrics need the package.
        from prometheus_client.parser import text_string_to_metric_families
        self.text = text
        self.types = {}
        self.samples = {}
        for family in text_string_to_metric_families(text):
            self.types[family.name] = family.type
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def value(self, name, **labels):
        """The sample's value; 0 when no such sample (a label set never seen)."""
        return self.samples.get((name, frozenset(labels.items())), 0)

    def total(self, name, **labels):
        """The sum over every sample of `name` whose labels include `labels`."""
        wanted = set(labels.items())
        return sum(v for (n, l), v in self.samples.items() if n == name and wanted <= l)


async def scrape_metrics(port):
    """GET /metrics of the server on `port`, parsed."""
    status, _, text = await http_get(f"http://127.0.0.1:{port}/metrics")
    check(status == 200, f"/metrics answered {status}")
    return Scrape(text)


class Failure(Exception):
    """An assertion about the server's behaviour did not hold."""


def check(condition, message):
    if not condition:
        raise Failure(message)


def connect(url, **kwargs):
    """websockets.connect with short timeouts, no size cap and no compression."""
    kwargs.setdefault("open_timeout", 5)
    kwargs.setdefault("close_timeout", 5)
    kwargs.setdefault("max_size", None)
    # No permessage-deflate: frames go over the wire at their real size.
    kwargs.setdefault("compression", None)
    return websockets.connect(url, **kwargs)


def rss_kib(pid):
    """The resident set of process `pid`, in KiB, from /proc."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise Failure(f"no VmRSS for process {pid}")


def close_code_of(exc):
    """Close code the server sent, or None if no close frame was received."""
    return exc.rcvd.code if exc.rcvd is not None else None


class Server:
    """An example binary running as a child process on a free port.

    `scheme` is what its listening line announces: "wss" when it is given
    --cert and --key. With `capture_stderr`, the server's stderr is piped
    and read line by line in the background (so the pipe never fills): the
    lines are kept in `stderr_lines`, still echoed to our stderr with a
    "[label] " prefix, and `wait_for_stderr` awaits one that matches.
    """

    def __init__(self, binary, *args, scheme="ws", capture_stderr=False, label="server",
                 max_fds=None):
        self.binary = binary
        self.args = ["--port", "0", *args]
        self.scheme = scheme
        self.proc = None
        self.port = None
        self._drain = None
        self.capture_stderr = capture_stderr
        self.label = label
        self.max_fds = max_fds  # the server's RLIMIT_NOFILE, soft and hard; None: ours
        self.stderr_lines = []
        self.stderr_closed = False  # the server closed its stderr (it exited)
        self._stderr_changed = None
        self._stderr_drain = None

    @property
    def base_url(self):
        return f"{self.scheme}://127.0.0.1:{self.port}"

    async def start(self):
        limit = None
        if self.max_fds is not None:
            def limit():  # in the child, before exec: the examples raise soft to hard
                resource.setrlimit(resource.RLIMIT_NOFILE, (self.max_fds, self.max_fds))
        self.proc = await asyncio.create_subprocess_exec(
            self.binary, *self.args, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE if self.capture_stderr else None,
            preexec_fn=limit,
        )
        if self.capture_stderr:
            self._stderr_changed = asyncio.Event()
            self._stderr_drain = asyncio.create_task(self._collect_stderr())
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), STARTUP_TIMEOUT)
        except asyncio.TimeoutError:
            raise Failure(
                f"{self.binary} printed no 'listening on' line within {STARTUP_TIMEOUT} s"
            ) from None
        if not line:
            code = await self.proc.wait()
            raise Failure(f"{self.binary} exited with code {code} before listening")
        text = line.decode(errors="replace").rstrip("\r\n")
        match = listening_re(self.scheme).match(text)
        check(match, f"unexpected first stdout line from server: {text!r}")
        self.port = int(match.group(1))
        # Keep reading stdout so a chatty server never blocks on a full pipe.
        self._drain = asyncio.create_task(self._forward_output())

    async def _forward_output(self):
        async for line in self.proc.stdout:
            sys.stderr.write("[server] " + line.decode(errors="replace"))

    async def _collect_stderr(self):
        try:
            async for line in self.proc.stderr:
                text = line.decode(errors="replace").rstrip("\r\n")
                self.stderr_lines.append(text)
                sys.stderr.write(f"[{self.label}] {text}\n")
                self._stderr_changed.set()
        finally:
            self.stderr_closed = True
            self._stderr_changed.set()

    def stderr_matching(self, pattern):
        """The captured stderr lines so far that match `pattern` (a regex,
        case-insensitive when given as a string)."""
        regex = re.compile(pattern, re.IGNORECASE) if isinstance(pattern, str) else pattern
        return [line for line in self.stderr_lines if regex.search(line)]

    async def wait_for_stderr(self, pattern, timeout, count=1):
        """Waits until at least `count` captured stderr lines match `pattern`;
        returns them. Raises Failure after `timeout` seconds or if the server
        closes its stderr first."""
        check(self.capture_stderr, "wait_for_stderr needs Server(..., capture_stderr=True)")
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            self._stderr_changed.clear()
            found = self.stderr_matching(pattern)
            if len(found) >= count:
                return found
            tail = self.stderr_lines[-5:]
            if self.stderr_closed:
                raise Failure(f"{self.label} closed its stderr with {len(found)} of {count} "
                              f"lines matching {pattern!r}; last lines: {tail}")
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                await asyncio.wait_for(self._stderr_changed.wait(), max(remaining, 0))
            except asyncio.TimeoutError:
                raise Failure(f"{self.label}: {len(found)} of {count} stderr lines matching "
                              f"{pattern!r} within {timeout} s; last lines: {tail}") from None

    async def terminate(self, timeout=SHUTDOWN_TIMEOUT):
        """Sends SIGTERM and returns the exit status; raises Failure if the
        process is still running after `timeout` seconds."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            raise Failure(f"{self.label} still running {timeout} s after SIGTERM") from None

    async def kill(self):
        if self.proc is None:
            return
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        if self._drain is not None:
            self._drain.cancel()
        if self._stderr_drain is not None:
            self._stderr_drain.cancel()


async def check_graceful_shutdown(server, path, **connect_kwargs):
    """SIGTERM closes an open client with 1001 and the process exits 0."""
    async with connect(server.base_url + path, **connect_kwargs) as ws:
        # Make sure the connection is fully established before signalling.
        await ws.ping()
        server.proc.send_signal(signal.SIGTERM)
        try:
            while True:  # skip anything the server pushes before closing
                await asyncio.wait_for(ws.recv(), SHUTDOWN_TIMEOUT)
        except ConnectionClosed as exc:
            code = close_code_of(exc)
            check(code == 1001, f"expected close code 1001 on shutdown, got {code} ({exc})")
        except asyncio.TimeoutError:
            raise Failure(f"no close frame within {SHUTDOWN_TIMEOUT} s of SIGTERM") from None
    try:
        status = await asyncio.wait_for(server.proc.wait(), SHUTDOWN_TIMEOUT)
    except asyncio.TimeoutError:
        raise Failure(f"server still running {SHUTDOWN_TIMEOUT} s after SIGTERM") from None
    check(status == 0, f"server exited with code {status} after SIGTERM, expected 0")


async def run_steps(name, steps):
    """Run (label, coroutine function) pairs in order; return the exit status.
    A step given as (label, coroutine function, seconds) has its own timeout
    instead of STEP_TIMEOUT."""
    passed = failed = 0
    for label, step, *own_timeout in steps:
        timeout = own_timeout[0] if own_timeout else STEP_TIMEOUT
        try:
            await asyncio.wait_for(step(), timeout)
        except asyncio.TimeoutError:
            error = f"timed out after {timeout} s"
        except Failure as exc:
            error = str(exc)
        except Exception as exc:  # any unexpected client error is a failure too
            error = f"{type(exc).__name__}: {exc}"
        else:
            error = None
        if error is None:
            passed += 1
            print(f"PASS {label}", flush=True)
        else:
            failed += 1
            print(f"FAIL {label}: {error}", flush=True)
    print(f"{name}: {passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


def main(name, test):
    """Entry point: `test(binary)` is a coroutine returning an exit status."""
    if len(sys.argv) != 2:
        print(f"usage: {sys.argv[0]} PATH_TO_SERVER_BINARY", file=sys.stderr)
        sys.exit(2)
    try:
        status = asyncio.run(test(sys.argv[1]))
    except (Failure, OSError) as exc:  # server missing or failed to start
        print(f"FAIL {name}: {exc}", flush=True)
        print(f"{name}: 0 passed, 1 failed", flush=True)
        status = 1
    sys.exit(status)
