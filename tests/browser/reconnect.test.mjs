// Browser test of the chat page coming back after its connection is lost:
// headless Chromium, driven with playwright-core. Pat's page reaches the chat
// example through a TCP proxy in this script, which can cut every connection
// and refuse new ones, as a phone that changes network would; Sam's page
// talks to the server directly. While Pat is cut off, Sam sends messages;
// Pat's page must say it is reconnecting, come back by itself, show each
// missed message once and in order (recovered from the room's history with
// ?since=&epoch=), then live ones, and list both members. A screenshot is kept.
// Then, when redis-server is installed, the same with two chat processes on
// one Redis: Pat's process is killed (SIGKILL) and started again on its
// port while Sam, on the other, sends messages; Pat's page must come back
// to the restarted process by itself and show them once, in order, from the
// room's history in Redis, with both members listed (chat-restart.png).
//
// Usage: node tests/browser/reconnect.test.mjs path/to/mallard_chat ARTIFACT_DIR
// Environment: CHROMIUM (default /usr/bin/chromium) selects the browser binary.
// The last line printed is `chat reconnect: N passed, M failed`.

import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import net from 'node:net';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const STARTUP_TIMEOUT_MS = 20_000;
const STEP_TIMEOUT_MS = 15_000;
const WATCHDOG_MS = 170_000;
const LISTENING_RE = /^listening on ws:\/\/127\.0\.0\.1:(\d+)$/;
const MISSED = ['two', 'three', 'four'];

const CHECKS = [
  'server and proxy start',
  'pat (through the proxy) and sam join the room and see each other in the member list',
  'pat sees sam\'s first message',
  'with the connection cut, pat\'s page says it is reconnecting',
  'pat\'s page comes back by itself, passing its offset and epoch',
  'the missed messages show once each, in order',
  'a live message after the reconnect shows once',
  'the member list matches after the reconnect',
  'no script errors',
  'screenshot of pat\'s page saved',
];
const REDIS_CHECKS = [
  'redis-server and two chat processes on it start',
  'pat on process A and sam on process B list each other',
  'pat\'s process killed: the page says it is reconnecting, sam\'s list loses pat',
  'process A restarted: pat\'s page comes back and shows the missed messages once, in order',
  'a live message from process B shows once, and both lists match',
  'screenshot of pat\'s page after the restart saved',
];
const HAVE_REDIS = spawnSync('sh', ['-c', 'command -v redis-server'], { stdio: 'ignore' }).status === 0;
if (HAVE_REDIS) CHECKS.push(...REDIS_CHECKS);
const results = new Map();

class Failure extends Error {}
const expect = (condition, message) => { if (!condition) throw new Failure(message); };

async function check(name, fn) {
  if (!CHECKS.includes(name)) throw new Error(`unknown check: ${name}`);
  try {
    await fn();
    results.set(name, { ok: true });
    console.log(`PASS ${name}`);
    return true;
  } catch (err) {
    const detail = err instanceof Failure ? err.message : (err && err.stack) || String(err);
    results.set(name, { ok: false, detail });
    console.log(`FAIL ${name}\n     ${detail.split('\n').join('\n     ')}`);
    return false;
  }
}

function startServer(binary, args = ['--port', '0']) {
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const port = new Promise((resolvePort, reject) => {
    const timer = setTimeout(() => reject(new Failure('no listening line')), STARTUP_TIMEOUT_MS);
    let first = true;
    lines.on('line', (line) => {
      if (!first) return;
      first = false;
      clearTimeout(timer);
      const match = LISTENING_RE.exec(line);
      match ? resolvePort(Number(match[1])) : reject(new Failure(`first line: ${line}`));
    });
    child.on('exit', (code) => reject(new Failure(`server exited (code ${code})`)));
  });
  port.catch(() => {});
  return { child, port };
}

// A TCP proxy to `target` on 127.0.0.1 that can cut every connection it
// carries and refuse new ones until reopened.
function startProxy(target) {
  const sockets = new Set();
  let open = true;
  const server = net.createServer((client) => {
    if (!open) {
      client.destroy();
      return;
    }
    const upstream = net.connect(target, '127.0.0.1');
    for (const [a, b] of [[client, upstream], [upstream, client]]) {
      a.pipe(b);
      a.on('error', () => b.destroy());
      a.on('close', () => b.destroy());
      sockets.add(a);
      a.on('close', () => sockets.delete(a));
    }
  });
  return new Promise((ready) => server.listen(0, '127.0.0.1', () => ready({
    port: server.address().port,
    cut() {
      open = false;
      for (const s of sockets) s.destroy();
    },
    reopen() { open = true; },
    close() { server.close(); for (const s of sockets) s.destroy(); },
  })));
}

// A TCP port nothing listens on now.
function freePort() {
  return new Promise((ready, fail) => {
    const probe = net.createServer();
    probe.on('error', fail);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => ready(port));
    });
  });
}

// A private redis-server, no persistence; resolves once it accepts connections.
async function startRedis() {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
    '--appendonly', 'no', '--loglevel', 'warning'], { stdio: 'ignore' });
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  for (;;) {
    const up = await new Promise((answer) => {
      const socket = net.connect(port, '127.0.0.1', () => { socket.end(); answer(true); });
      socket.on('error', () => answer(false));
    });
    if (up) return { child, port };
    if (Date.now() > deadline) throw new Failure('redis-server did not start');
    await new Promise((later) => setTimeout(later, 50));
  }
}

// The texts of the room messages a page shows, in order.
const shownTexts = (page) => page.$$eval('#messages .message .text', (els) => els.map((e) => e.textContent));
const memberNames = (page) => page.$$eval('#member-list li', (els) => els.map((e) => e.textContent).sort());

async function say(page, text) {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
}

async function main() {
  const [binary, artifactArg] = process.argv.slice(2);
  if (!binary || !artifactArg) {
    console.error('usage: node reconnect.test.mjs MALLARD_CHAT ARTIFACT_DIR');
    process.exit(2);
  }
  const artifacts = resolve(artifactArg);
  mkdirSync(artifacts, { recursive: true });
  const server = startServer(binary);
  const watchdog = setTimeout(() => {
    console.log('FAIL watchdog: the test took too long');
    server.child.kill('SIGKILL');
    process.exit(1);
  }, WATCHDOG_MS);
  let browser;
  let proxy;
  let port;
  const errors = [];
  const patSockets = [];
  try {
    await check('server and proxy start', async () => {
      port = await server.port;
      proxy = await startProxy(port);
    });
    if (!proxy) return;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    });
    const open = async (label, url) => {
      const context = await browser.newContext({ viewport: { width: 900, height: 700 } });
      const page = await context.newPage();
      page.setDefaultTimeout(STEP_TIMEOUT_MS);
      page.on('pageerror', (err) => errors.push(`${label}: ${err.message}`));
      page.on('console', (msg) => {
        // A refused reconnect logs a connection error: expected while cut off.
        if (msg.type() === 'error' && !msg.text().includes('WebSocket connection')) {
          errors.push(`${label}: ${msg.text()}`);
        }
      });
      await page.goto(url);
      return page;
    };
    const pat = await open('pat', `http://127.0.0.1:${proxy.port}/?room=lobby&name=pat&autojoin=1`);
    pat.on('websocket', (ws) => patSockets.push(ws.url()));
    const sam = await open('sam', `http://127.0.0.1:${port}/?room=lobby&name=sam&autojoin=1`);

    await check('pat (through the proxy) and sam join the room and see each other in the member list', async () => {
      for (const page of [pat, sam]) {
        await page.waitForFunction(() => document.querySelector('#status').textContent.startsWith('connected'));
        await page.waitForFunction(() => document.querySelectorAll('#member-list li').length === 2);
        const names = await memberNames(page);
        expect(names.join() === 'pat,sam', `member list: ${names.join(', ')}`);
      }
    });
    await check('pat sees sam\'s first message', async () => {
      await say(sam, 'one');
      await pat.waitForFunction(() => [...document.querySelectorAll('#messages .message .text')]
        .some((e) => e.textContent === 'one'));
    });
    await check('with the connection cut, pat\'s page says it is reconnecting', async () => {
      proxy.cut();
      await pat.waitForFunction(() => document.querySelector('#status').textContent.startsWith('reconnecting'));
      // Sam sees pat leave: the server noticed the lost connection.
      await sam.waitForFunction(() => document.querySelectorAll('#member-list li').length === 1);
    });
    await check('pat\'s page comes back by itself, passing its offset and epoch', async () => {
      for (const text of MISSED) await say(sam, text);
      await sam.waitForFunction((n) => document.querySelectorAll('#messages .message').length === n,
        1 + MISSED.length);
      const before = patSockets.length;
      proxy.reopen();
      await pat.waitForFunction(() => document.querySelector('#status').textContent.startsWith('connected'));
      const again = patSockets.slice(before);
      expect(again.length >= 1 && /[?&]since=1&epoch=[0-9a-f]{16}$/.test(again[again.length - 1]),
        `reconnected with ${again.join(', ') || 'nothing'}`);
    });
    await check('the missed messages show once each, in order', async () => {
      await pat.waitForFunction((n) => document.querySelectorAll('#messages .message').length >= n,
        1 + MISSED.length);
      const texts = await shownTexts(pat);
      expect(texts.join() === ['one', ...MISSED].join(), `pat's page shows ${texts.join(', ')}`);
      const recovered = await pat.$$eval('#messages .notice', (els) => els.map((e) => e.textContent));
      expect(recovered.some((t) => t.includes('3 missed messages recovered')),
        `notices: ${recovered.join(' | ')}`);
    });
    await check('a live message after the reconnect shows once', async () => {
      await say(sam, 'five');
      await pat.waitForFunction(() => [...document.querySelectorAll('#messages .message .text')]
        .some((e) => e.textContent === 'five'));
      const texts = await shownTexts(pat);
      expect(texts.join() === ['one', ...MISSED, 'five'].join(), `pat's page shows ${texts.join(', ')}`);
    });
    await check('the member list matches after the reconnect', async () => {
      for (const page of [pat, sam]) {
        await page.waitForFunction(() => document.querySelectorAll('#member-list li').length === 2);
        const names = await memberNames(page);
        expect(names.join() === 'pat,sam', `member list: ${names.join(', ')}`);
      }
    });
    await pat.screenshot({ path: join(artifacts, 'chat-reconnect.png'), fullPage: true })
      .then(() => check('screenshot of pat\'s page saved', async () => {}),
        (err) => check('screenshot of pat\'s page saved', async () => { throw err; }));
    if (HAVE_REDIS) await restartOnRedis(binary, browser, open, artifacts);
    await check('no script errors', async () => {
      expect(errors.length === 0, errors.join('\n'));
    });
  } finally {
    clearTimeout(watchdog);
    if (browser) await browser.close().catch(() => {});
    if (proxy) proxy.close();
    server.child.kill('SIGTERM');
    for (const child of extraChildren) child.kill('SIGKILL');
  }
}

const extraChildren = [];

// Two chat processes on one Redis; pat's is killed and started again.
async function restartOnRedis(binary, browser, open, artifacts) {
  let redis;
  let a;
  let b;
  let portA;
  const startA = async () => {
    a = startServer(binary, ['--port', String(portA), '--redis', `redis://127.0.0.1:${redis.port}`]);
    extraChildren.push(a.child);
    await a.port;
  };
  await check('redis-server and two chat processes on it start', async () => {
    redis = await startRedis();
    extraChildren.push(redis.child);
    portA = await freePort();
    await startA();
    b = startServer(binary, ['--port', '0', '--redis', `redis://127.0.0.1:${redis.port}`]);
    extraChildren.push(b.child);
    await b.port;
  });
  if (!b) return;
  const pat = await open('pat (A)', `http://127.0.0.1:${portA}/?room=rr&name=pat&autojoin=1`);
  const sam = await open('sam (B)', `http://127.0.0.1:${await b.port}/?room=rr&name=sam&autojoin=1`);
  const listsBoth = async (page) => {
    await page.waitForFunction(() => document.querySelectorAll('#member-list li').length === 2);
    const names = await memberNames(page);
    expect(names.join() === 'pat,sam', `member list: ${names.join(', ')}`);
  };
  await check('pat on process A and sam on process B list each other', async () => {
    for (const page of [pat, sam]) {
      await page.waitForFunction(() => document.querySelector('#status').textContent.startsWith('connected'));
      await listsBoth(page);
    }
    await say(sam, 'r1');
    await pat.waitForFunction(() => [...document.querySelectorAll('#messages .message .text')]
      .some((e) => e.textContent === 'r1'));
  });
  const missed = ['r2', 'r3', 'r4'];
  await check('pat\'s process killed: the page says it is reconnecting, sam\'s list loses pat', async () => {
    a.child.kill('SIGKILL');
    await pat.waitForFunction(() => document.querySelector('#status').textContent.startsWith('reconnecting'));
    for (const text of missed) await say(sam, text);
    await sam.waitForFunction((n) => document.querySelectorAll('#messages .message').length === n,
      1 + missed.length);
    // The dead process's members leave within 4 heartbeats (4 s).
    await sam.waitForFunction(() => document.querySelectorAll('#member-list li').length === 1);
  });
  await check('process A restarted: pat\'s page comes back and shows the missed messages once, in order', async () => {
    await startA();
    await pat.waitForFunction(() => document.querySelector('#status').textContent.startsWith('connected'),
      null, { timeout: 30_000 });
    await pat.waitForFunction((n) => document.querySelectorAll('#messages .message').length >= n,
      1 + missed.length);
    const texts = await shownTexts(pat);
    expect(texts.join() === ['r1', ...missed].join(), `pat's page shows ${texts.join(', ')}`);
  });
  await check('a live message from process B shows once, and both lists match', async () => {
    await say(sam, 'r5');
    await pat.waitForFunction(() => [...document.querySelectorAll('#messages .message .text')]
      .some((e) => e.textContent === 'r5'));
    const texts = await shownTexts(pat);
    expect(texts.join() === ['r1', ...missed, 'r5'].join(), `pat's page shows ${texts.join(', ')}`);
    for (const page of [pat, sam]) await listsBoth(page);
  });
  await pat.screenshot({ path: join(artifacts, 'chat-restart.png'), fullPage: true })
    .then(() => check('screenshot of pat\'s page after the restart saved', async () => {}),
      (err) => check('screenshot of pat\'s page after the restart saved', async () => { throw err; }));
}

main().catch((err) => console.log(`FAIL unexpected: ${err.stack || err}`)).finally(() => {
  let passed = 0;
  for (const name of CHECKS) {
    if (results.get(name)?.ok) ++passed;
    else if (!results.has(name)) console.log(`FAIL ${name}\n     not run`);
  }
  const failed = CHECKS.length - passed;
  console.log(`chat reconnect: ${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
});
