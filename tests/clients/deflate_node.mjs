// permessage-deflate (RFC 7692) interop: Node's `ws` with perMessageDeflate on
// against `mallard_echo --exact`.
//   node tests/clients/deflate_node.mjs path/to/mallard_echo

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';

const NAME = 'deflate_node';
const TIMEOUT_MS = 20_000;

function withTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out`)), TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const binary = process.argv[2];
if (!binary) {
  console.error('usage: node deflate_node.mjs PATH_TO_MALLARD_ECHO');
  process.exit(2);
}

const server = spawn(binary, ['--port', '0', '--exact'], { stdio: ['ignore', 'pipe', 'inherit'] });
let passed = 0;
let failed = 0;
try {
  const port = await withTimeout(new Promise((resolve, reject) => {
    server.on('error', reject);
    createInterface({ input: server.stdout }).once('line', (line) => {
      const match = /^listening on ws:\/\/127\.0\.0\.1:(\d+)$/.exec(line);
      if (match) resolve(Number(match[1]));
      else reject(new Error(`unexpected first line: ${line}`));
    });
  }), 'server start');

  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/echo`, { perMessageDeflate: { threshold: 0 } });
  await withTimeout(new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  }), 'connect');
  const roundTrip = (data, binary) => withTimeout(new Promise((resolve) => {
    ws.once('message', (reply, isBinary) => resolve({ reply, isBinary }));
    ws.send(data, { binary });
  }), 'echo');

  const checks = [];
  checks.push(['permessage-deflate negotiated', String(ws.extensions).includes('permessage-deflate')]);
  const text = 'the quick brown fox jumps over the lazy dog '.repeat(4000);
  const t = await roundTrip(text, false);
  checks.push(['compressed text echoed unchanged', !t.isBinary && t.reply.toString() === text]);
  const data = Buffer.alloc(300_000, 7);
  const b = await roundTrip(data, true);
  checks.push(['compressed binary echoed unchanged', b.isBinary && Buffer.compare(b.reply, data) === 0]);
  const closed = withTimeout(new Promise((resolve) => ws.once('close', (code) => resolve(code))), 'close');
  ws.close(1000, 'done');
  checks.push(['closes with 1000', (await closed) === 1000]);
  for (const [label, ok] of checks) {
    console.log(`${ok ? 'PASS' : 'FAIL'} ${label}`);
    ok ? passed++ : failed++;
  }
} catch (err) {
  console.log(`FAIL ${err.message}`);
  failed++;
} finally {
  server.kill('SIGTERM');
}
console.log(`${NAME}: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
