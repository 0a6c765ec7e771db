// Client test for the mallard_echo example, using the `ws` npm package.
//
// Usage (dependencies are resolved from tests/clients/node_modules, so run
// `npm ci` there once; the script itself can be started from any directory):
//   (cd tests/clients && npm ci)
//   node tests/clients/echo_node.mjs path/to/mallard_echo

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';

const NAME = 'echo_node';
const ECHO_PATH = '/ws/echo';
const MAX_MESSAGE = 1024 * 1024; // server-side message size limit
const STARTUP_TIMEOUT_MS = 20_000;
const STEP_TIMEOUT_MS = 15_000;
const SHUTDOWN_TIMEOUT_MS = 10_000;
const LISTENING_RE = /^listening on ws:\/\/127\.0\.0\.1:(\d+)$/;

class Failure extends Error {}

function check(condition, message) {
  if (!condition) throw new Failure(message);
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Failure(`${what} timed out after ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Starts the server on a free port; resolves once its first stdout line
// ("listening on ws://127.0.0.1:PORT") has been read.
function startServer(binary) {
  const proc = spawn(binary, ['--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => proc.on('close', (code, signal) => resolve({ code, signal })));
  const listening = new Promise((resolve, reject) => {
    let first = true;
    proc.on('error', (err) => reject(new Failure(`cannot start ${binary}: ${err.message}`)));
    exited.then(({ code, signal }) => reject(new Failure(`${binary} exited (code ${code}, signal ${signal}) before listening`)));
    // Keep reading after the first line so a chatty server never blocks on a full pipe.
    createInterface({ input: proc.stdout }).on('line', (line) => {
      if (!first) {
        process.stderr.write(`[server] ${line}\n`);
        return;
      }
      first = false;
      const match = LISTENING_RE.exec(line);
      if (match) resolve(Number(match[1]));
      else reject(new Failure(`unexpected first stdout line from server: ${JSON.stringify(line)}`));
    });
  });
  return { proc, exited, listening };
}

// Every socket opened by a step, so leftovers can be torn down afterwards.
const sockets = new Set();

// Opens a client connection. `closed` is set up before anything can happen,
// so it always resolves with the close code/reason the client ends up with
// (1006 when no close frame was received).
function connect(url) {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  sockets.add(ws);
  const closed = new Promise((resolve) => {
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
  const opened = new Promise((resolve, reject) => {
    ws.on('open', resolve);
    ws.on('error', (err) => reject(new Failure(`connection error: ${err.message}`)));
    ws.on('unexpected-response', (req, res) => {
      res.resume();
      reject(new Failure(`handshake refused with HTTP ${res.statusCode}`));
      ws.terminate();
    });
  });
  return { ws, closed, opened };
}

async function open(url) {
  const conn = connect(url);
  await conn.opened;
  return conn;
}

// Resolves with the next message, rejects if the connection closes first.
function nextMessage(ws) {
  return new Promise((resolve, reject) => {
    const onMessage = (data, isBinary) => {
      ws.off('close', onClose);
      resolve({ data, isBinary });
    };
    const onClose = (code) => {
      ws.off('message', onMessage);
      reject(new Failure(`connection closed (code ${code}) while waiting for a message`));
    };
    ws.once('message', onMessage);
    ws.once('close', onClose);
  });
}

async function main(server) {
  const port = await withTimeout(server.listening, STARTUP_TIMEOUT_MS, "waiting for the 'listening on' line");
  const base = `ws://127.0.0.1:${port}`;
  const url = base + ECHO_PATH;

  const steps = [
    ["text message is answered with 'You sent hello'", async () => {
      const { ws, closed } = await open(url);
      ws.send('hello');
      const { data, isBinary } = await nextMessage(ws);
      check(!isBinary, 'expected a text reply, got binary');
      check(data.toString() === 'You sent hello', `expected 'You sent hello', got ${JSON.stringify(data.toString())}`);
      ws.close();
      await closed;
    }],

    ['binary message is echoed unchanged', async () => {
      const payload = Buffer.from(Array.from({ length: 1000 }, () => [0x00, 0x01, 0xff]).flat());
      const { ws, closed } = await open(url);
      ws.send(payload);
      const { data, isBinary } = await nextMessage(ws);
      check(isBinary, 'expected a binary reply, got text');
      check(payload.equals(data), `binary echo differs (${data.length} bytes back, ${payload.length} sent)`);
      ws.close();
      await closed;
    }],

    ['message over 1 MiB closes with 1009', async () => {
      const { ws, closed } = await open(url);
      const answered = new Promise((_, reject) => ws.once('message', (data) => reject(
        new Failure(`server answered an oversized message (${data.length} bytes) instead of closing`))));
      ws.send(Buffer.alloc(MAX_MESSAGE + 1));
      const { code } = await Promise.race([closed, answered]);
      check(code === 1009, `expected close code 1009, got ${code}`);
    }],

    ['unknown path is refused with HTTP 404', async () => {
      const { opened } = connect(base + '/nope');
      try {
        await opened;
      } catch (err) {
        check(/HTTP 404$/.test(err.message), `expected HTTP 404, got: ${err.message}`);
        return;
      }
      throw new Failure('handshake to /nope succeeded, expected HTTP 404');
    }],

    ["client close 4000 'bye' is echoed", async () => {
      const { ws, closed } = await open(url);
      ws.close(4000, 'bye');
      const { code } = await closed;
      check(code === 4000, `expected the server to echo close code 4000, got ${code}`);
    }],

    ['SIGTERM closes clients with 1001 and exits 0', async () => {
      const { ws, closed } = await open(url);
      // One round trip so the connection is certainly established server-side.
      ws.send('ready?');
      await nextMessage(ws);
      server.proc.kill('SIGTERM');
      const { code } = await withTimeout(closed, SHUTDOWN_TIMEOUT_MS, 'waiting for the close frame after SIGTERM');
      check(code === 1001, `expected close code 1001 on shutdown, got ${code}`);
      const exit = await withTimeout(server.exited, SHUTDOWN_TIMEOUT_MS, 'waiting for the server to exit after SIGTERM');
      check(exit.code === 0, `server exited with code ${exit.code} (signal ${exit.signal}) after SIGTERM, expected 0`);
    }],
  ];

  let passed = 0;
  let failed = 0;
  for (const [label, step] of steps) {
    try {
      await withTimeout(step(), STEP_TIMEOUT_MS, 'step');
      passed += 1;
      console.log(`PASS ${label}`);
    } catch (err) {
      failed += 1;
      console.log(`FAIL ${label}: ${err instanceof Failure ? err.message : err.stack}`);
    }
    for (const ws of sockets) ws.terminate();
    sockets.clear();
  }
  console.log(`${NAME}: ${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

if (process.argv.length !== 3) {
  console.error('usage: node echo_node.mjs PATH_TO_SERVER_BINARY');
  process.exit(2);
}

const server = startServer(process.argv[2]);
let status = 1;
try {
  status = await main(server);
} catch (err) { // the server did not start
  console.log(`FAIL ${NAME}: ${err instanceof Failure ? err.message : err.stack}`);
  console.log(`${NAME}: 0 passed, 1 failed`);
} finally {
  if (server.proc.exitCode === null && server.proc.signalCode === null) server.proc.kill('SIGKILL');
}
process.exit(status);
