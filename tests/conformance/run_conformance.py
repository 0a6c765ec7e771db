#!/usr/bin/env python3
# SPDX-License-Identifier: BSL-1.0
"""Runs the RFC 6455 conformance suite against an echo server binary.

    run_conformance.py BINARY [--section N] [--filter TEXT] [-j N] [--list] [-v]

Starts `BINARY --port 0 --exact`, reads the port from its first line
("listening on ws://127.0.0.1:PORT"), runs the cases over parallel
connections, prints one line per failed case, a summary per section and
finally "conformance: N passed, M failed". The server is always stopped with
SIGTERM (then killed if it lingers) and must exit with status 0.

Exit status: 0 when every case passed and the server exited cleanly, 1
otherwise, 2 when the server could not be started.
"""

import argparse
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cases as suite  # noqa: E402
from rawclient import Failure  # noqa: E402

STARTUP_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0  # the server's shutdown grace is 5 s


class Server:
    def __init__(self, binary):
        self.binary = binary
        self.stderr = tempfile.TemporaryFile()
        self.proc = None
        self.port = None

    def start(self):
        self.proc = subprocess.Popen([self.binary, "--port", "0", "--exact"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.stderr)
        line = self._first_line()
        prefix = "listening on ws://127.0.0.1:"
        if not line.startswith(prefix):
            raise RuntimeError("unexpected first line from the server: %r" % line)
        self.port = int(line[len(prefix):].strip().rstrip("/"))
        threading.Thread(target=self._drain, daemon=True).start()

    def _first_line(self):
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        data = b""
        while b"\n" not in data:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError("the server printed no 'listening on' line within %.0f s"
                                   % STARTUP_TIMEOUT)
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 1)
                if not chunk:
                    raise RuntimeError("the server exited before listening (status %s)"
                                       % self.proc.wait())
                data += chunk
        return data.decode("utf-8", "replace").strip()

    def _drain(self):
        try:
            while self.proc.stdout.read(65536):
                pass
        except (OSError, ValueError):
            pass

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM, then SIGKILL if needed. Returns (status, how)."""
        if self.proc is None:
            return None, "not started"
        if self.proc.poll() is not None:
            return self.proc.returncode, "had already exited"
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(STOP_TIMEOUT), "after SIGTERM"
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(), "killed: still running %.0f s after SIGTERM" % STOP_TIMEOUT

    def stderr_tail(self, lines=40):
        self.stderr.seek(0)
        text = self.stderr.read().decode("utf-8", "replace").splitlines()
        return text[-lines:]


# Cases the testee is known to fail, with the reason (none today). They are
# reported as skipped while they fail, and as failures once they pass, so that
# this list is kept accurate.
KNOWN_FAILURES = {}


def run_case(case, port):
    ctx = suite.Context(port)
    start = time.monotonic()
    try:
        case.fn(ctx)
        result = None
    except Failure as e:
        result = str(e)
    except TimeoutError:
        result = "timed out waiting for the server"
    except OSError as e:
        result = "connection error: %s" % e
    except Exception:  # a mistake in the case itself
        result = "error in the case: " + traceback.format_exc().strip().splitlines()[-1]
    finally:
        ctx.close()
    return case, result, time.monotonic() - start


def main():
    parser = argparse.ArgumentParser(description="RFC 6455 conformance suite")
    parser.add_argument("binary", help="the echo server, run as BINARY --port 0 --exact")
    parser.add_argument("--section", type=int, action="append",
                        help="run only this section (may be repeated)")
    parser.add_argument("--filter", action="append",
                        help="run only cases whose id or name contains TEXT (may be repeated)")
    parser.add_argument("-j", "--jobs", type=int, default=4, help="parallel connections (4)")
    parser.add_argument("--list", action="store_true", help="list the selected cases and exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every case")
    args = parser.parse_args()

    selected = [c for c in suite.CASES
                if (not args.section or c.section in args.section)
                and (not args.filter or any(f.lower() in ("%s %s" % (c.id, c.name)).lower()
                                            for f in args.filter))]
    if args.list:
        for c in selected:
            print("%-10s %s" % (c.id, c.name))
        print("%d cases" % len(selected))
        return 0
    if not selected:
        print("conformance: no case matches the selection", file=sys.stderr)
        return 2

    server = Server(args.binary)
    started = time.monotonic()
    try:
        try:
            server.start()
        except (OSError, RuntimeError) as e:
            print("conformance: cannot start %s: %s" % (args.binary, e), file=sys.stderr)
            for line in server.stderr_tail():
                print("  server: " + line, file=sys.stderr)
            return 2

        # Longest cases first, so that they overlap with the short ones.
        order = sorted(selected, key=lambda c: 0 if c.section in (9, 10, 12) else 1)
        results = {}
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            for case, reason, elapsed in pool.map(lambda c: run_case(c, server.port), order):
                results[case.id] = (reason, elapsed)
                if args.verbose:
                    print("%s %-10s %6.2fs %s" % ("ok  " if reason is None else "FAIL",
                                                   case.id, elapsed, case.name), flush=True)
        alive_after = server.alive()
    finally:
        status, how = server.stop()
    elapsed = time.monotonic() - started

    known = [c for c in selected if c.id in KNOWN_FAILURES and results[c.id][0] is not None]
    for c in selected:
        if c.id in KNOWN_FAILURES and results[c.id][0] is None:
            results[c.id] = ("passes now: remove it from KNOWN_FAILURES", 0)
    failed = [c for c in selected if results[c.id][0] is not None and c not in known]
    for c in failed:
        print("FAIL %s %s: %s" % (c.id, c.name, results[c.id][0]))
    for c in known:
        print("known %s %s: %s" % (c.id, c.name, KNOWN_FAILURES[c.id]))

    print()
    sections = sorted({c.section for c in selected})
    for s in sections:
        in_section = [c for c in selected if c.section == s]
        bad = sum(1 for c in in_section if c in failed)
        skipped = sum(1 for c in in_section if c in known)
        print("section %-2d %-24s %3d passed, %d failed%s"
              % (s, suite.SECTIONS[s], len(in_section) - bad - skipped, bad,
                 ", %d known" % skipped if skipped else ""))

    server_ok = True
    if not alive_after:
        server_ok = False
        print("server: exited during the run (status %s)" % status)
    elif status != 0:
        server_ok = False
        print("server: exit status %s %s, expected 0" % (status, how))
    else:
        print("server: exit status 0 %s" % how)
    if failed or not server_ok:
        tail = server.stderr_tail()
        if tail:
            print("server stderr (last %d lines):" % len(tail))
            for line in tail:
                print("  " + line)
    print("run time: %.1f s" % elapsed)
    print("conformance: %d passed, %d failed, %d skipped"
          % (len(selected) - len(failed) - len(known), len(failed), len(known)))
    return 0 if not failed and server_ok else 1


if __name__ == "__main__":
    sys.exit(main())
