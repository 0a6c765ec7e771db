// Browser test for the live status page (server_options::status_path) of the
// chat example: headless Chromium, driven with playwright-core, opens /status
// while another page's WebSockets chat through the server; the page must show
// the connections and a message rate that change with the load, draw its
// charts, list the close codes after the load ends, and load nothing from
// anywhere but the server. A screenshot is kept.
//
// Usage: node tests/browser/status.test.mjs path/to/mallard_chat ARTIFACT_DIR
// Environment: CHROMIUM (default /usr/bin/chromium) selects the browser binary.
// The last line printed is `status page: N passed, M failed`.

import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const STARTUP_TIMEOUT_MS = 20_000;
const STEP_TIMEOUT_MS = 15_000;
const WATCHDOG_MS = 150_000;
const LISTENING_RE = /^listening on ws:\/\/127\.0\.0\.1:(\d+)$/;
const LOAD_SOCKETS = 3;

const CHECKS = [
  'server starts and prints its listening line',
  '/status is served and says it is live',
  'the page shows the load\'s connections',
  'the page shows messages per second in and out while the load runs',
  'the numbers change as the load runs',
  'the charts are drawn',
  'after the load ends, connections return to 0 and its close codes are listed',
  'the page loads nothing but itself and /metrics',
  'no script errors',
  'screenshot of the status page saved',
];
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

function startServer(binary) {
  const child = spawn(binary, ['--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
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

// The text of a value on the status page.
const shown = (page, id) => page.textContent(`#${id}`).then((t) => t.trim());
const number = (text) => Number(text.replace(/[^0-9.]/g, ''));

async function main() {
  const [binary, artifactArg] = process.argv.slice(2);
  if (!binary || !artifactArg) {
    console.error('usage: node status.test.mjs MALLARD_CHAT ARTIFACT_DIR');
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
  let base;
  const errors = [];
  const requests = [];
  try {
    await check('server starts and prints its listening line', async () => {
      base = `http://127.0.0.1:${await server.port}`;
    });
    if (!base) return;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    });
    const context = await browser.newContext({ viewport: { width: 1100, height: 820 } });
    const status = await context.newPage();
    status.setDefaultTimeout(STEP_TIMEOUT_MS);
    status.on('pageerror', (err) => errors.push(err.message));
    status.on('console', (msg) => { if (msg.type() === 'error') errors.push(msg.text()); });
    status.on('request', (req) => requests.push(req.url()));

    await check('/status is served and says it is live', async () => {
      const response = await status.goto(`${base}/status`, { waitUntil: 'load' });
      expect(response && response.ok(), `GET /status answered ${response?.status()}`);
      await status.waitForFunction(() => document.querySelector('#state').textContent.startsWith('live'));
    });

    // The load: another page whose WebSockets chat in a room, each sending
    // a message every 20 ms, as long as it runs.
    const load = await context.newPage();
    load.on('pageerror', (err) => errors.push(`load page: ${err.message}`));
    await load.goto(`${base}/status`); // any page of the server's origin
    await load.evaluate(async ({ count }) => {
      window.loadSockets = [];
      await Promise.all(Array.from({ length: count }, (_, i) => new Promise((open, fail) => {
        const ws = new WebSocket(`ws://${location.host}/ws/chat/load?name=bot${i}`);
        ws.onopen = () => open();
        ws.onerror = () => fail(new Error('socket failed'));
        window.loadSockets.push(ws);
      })));
      window.loadTimer = setInterval(() => {
        for (const ws of window.loadSockets)
          ws.send(JSON.stringify({ type: 'message', text: 'tick' }));
      }, 20);
    }, { count: LOAD_SOCKETS });

    await check('the page shows the load\'s connections', async () => {
      await status.waitForFunction((n) => document.querySelector('#connections').textContent.trim() === String(n),
        LOAD_SOCKETS);
    });
    let firstIn;
    await check('the page shows messages per second in and out while the load runs', async () => {
      // 3 sockets at up to 50 messages/s: up to 150 in, and each goes out to 3.
      // A first second may have caught the load's start, and a loaded
      // machine slows the page's timers: wait for a rate that says "busy".
      await status.waitForFunction(() =>
        Number(document.querySelector('#in-rate').textContent.replace(/[^0-9.]/g, '')) >= 30 &&
        Number(document.querySelector('#out-rate').textContent.replace(/[^0-9.]/g, '')) >= 90);
      firstIn = number(await shown(status, 'in-rate'));
      expect(firstIn < 1000, `messages in/s shows ${firstIn}`);
    });
    await check('the numbers change as the load runs', async () => {
      // The chat route's messages in, in the routes table.
      const before = await status.evaluate(() => document.querySelector('#routes').rows[1]?.cells[2]?.textContent);
      expect(number(before ?? '') > 0, `the routes table shows ${before} messages in`);
      await status.waitForFunction((then) =>
        document.querySelector('#routes').rows[1]?.cells[2]?.textContent !== then, before);
      const members = await shown(status, 'members');
      expect(members.startsWith(String(LOAD_SOCKETS)), `memberships shows "${members}"`);
    });
    await check('the charts are drawn', async () => {
      const inked = await status.evaluate(() =>
        ['connections-chart', 'in-rate-chart', 'out-rate-chart'].map((id) => {
          const c = document.getElementById(id);
          const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          let ink = 0;
          for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) ++ink;
          return ink;
        }));
      expect(inked.every((ink) => ink > 50), `inked pixels per chart: ${inked.join(', ')}`);
    });
    await status.screenshot({ path: join(artifacts, 'status-page.png'), fullPage: true })
      .then(() => check('screenshot of the status page saved', async () => {}),
        (err) => check('screenshot of the status page saved', async () => { throw err; }));

    await load.evaluate(() => {
      clearInterval(window.loadTimer);
      for (const ws of window.loadSockets) ws.close(1000, 'done');
    });
    await check('after the load ends, connections return to 0 and its close codes are listed', async () => {
      await status.waitForFunction(() => document.querySelector('#connections').textContent.trim() === '0');
      await status.waitForFunction((n) => [...document.querySelectorAll('#closes tr')].some((row) =>
        row.cells[0]?.textContent === '1000' && row.cells[1]?.textContent === 'peer closed' &&
        Number(row.cells[2]?.textContent) >= n), LOAD_SOCKETS);
    });
    await check('the page loads nothing but itself and /metrics', async () => {
      const others = requests.filter((url) => url !== `${base}/status` && url !== `${base}/metrics`);
      expect(requests.includes(`${base}/metrics`), 'the page never read /metrics');
      expect(others.length === 0, `other requests: ${others.join(', ')}`);
    });
    await check('no script errors', async () => {
      expect(errors.length === 0, errors.join('\n'));
    });
  } finally {
    clearTimeout(watchdog);
    if (browser) await browser.close().catch(() => {});
    server.child.kill('SIGTERM');
  }
}

main().catch((err) => console.log(`FAIL unexpected: ${err.stack || err}`)).finally(() => {
  let passed = 0;
  for (const name of CHECKS) {
    if (results.get(name)?.ok) ++passed;
    else if (!results.has(name)) console.log(`FAIL ${name}\n     not run`);
  }
  const failed = CHECKS.length - passed;
  console.log(`status page: ${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
});
