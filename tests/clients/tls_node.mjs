// TLS (wss://) client test for the mallard_echo example, using the `ws` npm
// package. The server's certificate and key are made with the `openssl`
// command for this run only, in a temporary directory removed afterwards
// (tls_certs.py makes the same certificate, and more, for the Python test).
//
// Usage (dependencies are resolved from tests/clients/node_modules, so run
// `npm ci` there once; the script itself can be started from any directory):
//   (cd tests/clients && npm ci)
//   node tests/clients/tls_node.mjs path/to/mallard_echo

import { execFileSync, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';

const NAME = 'tls_node';
const ECHO_PATH = '/ws/echo';
const STARTUP_TIMEOUT_MS = 20_000;
const STEP_TIMEOUT_MS = 15_000;
const SHUTDOWN_TIMEOUT_MS = 10_000;
// The server drops a connection whose TLS handshake fails at once, and one
// whose handshake never completes after its 10 s handshake timeout.
const DROP_DEADLINE_MS = 12_000;
const LISTENING_RE = /^listening on wss:\/\/127\.0\.0\.1:(\d+)$/;

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

// A self-signed certificate for IP:127.0.0.1 and DNS:localhost, and its key.
function makeCertificate(directory) {
  const cert = join(directory, 'cert.pem');
  const key = join(directory, 'key.pem');
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '7',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout', key, '-out', cert], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    throw new Failure(`cannot make the test certificate with openssl: ${err.stderr || err.message}`);
  }
  return { cert, key };
}

// Starts the server on a free port; resolves once its first stdout line
// ("listening on wss://127.0.0.1:PORT") has been read.
function startServer(binary, args) {
  const proc = spawn(binary, ['--port', '0', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
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
  listening.catch(() => {}); // awaited by main; a late rejection is not unhandled
  return { proc, exited, listening };
}

function running(server) {
  return server.proc.exitCode === null && server.proc.signalCode === null;
}

// Every socket opened by a step, so leftovers can be torn down afterwards.
const sockets = new Set();

// Opens a client connection. `closed` is set up before anything can happen,
// so it always resolves with the close code/reason the client ends up with
// (1006 when no close frame was received). `upgraded` resolves with the TLS
// socket the handshake response came on (null for ws://).
function connect(url, options = {}) {
  const ws = new WebSocket(url, { perMessageDeflate: false, ...options });
  sockets.add(ws);
  const closed = new Promise((resolve) => {
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
  let upgradedSocket = null;
  ws.on('upgrade', (res) => { upgradedSocket = res.socket; });
  const opened = new Promise((resolve, reject) => {
    ws.on('open', () => resolve(upgradedSocket));
    ws.on('error', (err) => reject(new Failure(`connection error: ${err.message}`)));
    ws.on('unexpected-response', (req, res) => {
      res.resume();
      reject(new Failure(`handshake refused with HTTP ${res.statusCode}`));
      ws.terminate();
    });
  });
  opened.catch(() => {}); // a step may never await it
  return { ws, closed, opened };
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

async function main(server, certFile) {
  const port = await withTimeout(server.listening, STARTUP_TIMEOUT_MS, "waiting for the 'listening on' line");
  const url = `wss://127.0.0.1:${port}${ECHO_PATH}`;
  const plainUrl = `ws://127.0.0.1:${port}${ECHO_PATH}`;
  const ca = readFileSync(certFile);
  const certificate = new X509Certificate(ca);

  async function open(target = url) {
    const conn = connect(target, { ca });
    const socket = await conn.opened;
    return { ...conn, socket };
  }

  async function textEcho(text) {
    const { ws, closed } = await open();
    ws.send(text);
    const { data, isBinary } = await nextMessage(ws);
    check(!isBinary, 'expected a text reply, got binary');
    check(data.toString() === `You sent ${text}`,
      `expected ${JSON.stringify(`You sent ${text}`)}, got ${JSON.stringify(data.toString())}`);
    ws.close();
    await closed;
  }

  const steps = [
    ["wss text message is answered with 'You sent hello' (certificate verified)", async () => {
      const { ws, closed, socket } = await open();
      check(socket && socket.encrypted, 'the handshake response did not come over TLS');
      const peer = socket.getPeerX509Certificate();
      check(peer && peer.fingerprint256 === certificate.fingerprint256,
        'the server presented another certificate than the one given with --cert');
      ws.send('hello');
      const { data, isBinary } = await nextMessage(ws);
      check(!isBinary, 'expected a text reply, got binary');
      check(data.toString() === 'You sent hello', `expected 'You sent hello', got ${JSON.stringify(data.toString())}`);
      ws.close();
      await closed;
    }],

    ['wss binary message is echoed unchanged', async () => {
      const payload = Buffer.from(Array.from({ length: 1000 }, () => [0x00, 0x01, 0xff]).flat());
      const { ws, closed } = await open();
      ws.send(payload);
      const { data, isBinary } = await nextMessage(ws);
      check(isBinary, 'expected a binary reply, got text');
      check(payload.equals(data), `binary echo differs (${data.length} bytes back, ${payload.length} sent)`);
      ws.close();
      await closed;
    }],

    ['plain ws:// client on the TLS port gets an error, the server keeps serving wss', async () => {
      const started = Date.now();
      const { opened } = connect(plainUrl);
      let error = null;
      try {
        await withTimeout(opened, DROP_DEADLINE_MS, 'the plain ws:// handshake');
      } catch (err) {
        error = err;
      }
      check(error !== null, 'a plain ws:// client connected to the TLS port');
      check(!/timed out/.test(error.message),
        `a plain ws:// handshake was neither answered nor dropped within ${DROP_DEADLINE_MS / 1000} s`);
      console.log(`  plain ws:// client failed after ${((Date.now() - started) / 1000).toFixed(2)} s: ${error.message}`);
      check(running(server), 'the server exited after a plain ws:// client');
      await textEcho('after a plain client');
    }],

    ['SIGTERM closes wss clients with 1001 and exits 0', async () => {
      const { ws, closed } = await open();
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
  console.error('usage: node tls_node.mjs PATH_TO_SERVER_BINARY');
  process.exit(2);
}

const directory = mkdtempSync(join(tmpdir(), 'mallard-tls-'));
let server = null;
let status = 1;
try {
  const { cert, key } = makeCertificate(directory);
  server = startServer(process.argv[2], ['--cert', cert, '--key', key]);
  status = await main(server, cert);
} catch (err) { // no certificate, or the server did not start
  console.log(`FAIL ${NAME}: ${err instanceof Failure ? err.message : err.stack}`);
  console.log(`${NAME}: 0 passed, 1 failed`);
} finally {
  if (server && running(server)) server.proc.kill('SIGKILL');
  rmSync(directory, { recursive: true, force: true });
}
process.exit(status);
