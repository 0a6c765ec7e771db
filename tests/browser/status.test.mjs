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

import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { checks, expect, inkedPixels, launchBrowser, openPage, startServer, watchdog } from './harness.mjs';

const STEP_TIMEOUT_MS = 15_000; // the page polls /metrics once a second
const LOAD_SOCKETS = 3;

const { check, finish } = checks([
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
]);

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
  const stopWatchdog = watchdog(150_000, server);
  let browser;
  let base;
  try {
    await check('server starts and prints its listening line', async () => {
      base = `http://127.0.0.1:${await server.port}`;
    });
    if (!base) return;
    browser = await launchBrowser();
    let info;
    await check('/status is served and says it is live', async () => {
      info = await openPage(browser, 'status', `${base}/status`, { width: 1100, height: 820 });
      info.page.setDefaultTimeout(STEP_TIMEOUT_MS);
      await info.page.waitForFunction(() => document.querySelector('#state').textContent.startsWith('live'));
    });
    if (!info) return;
    const { page: status, context, errors, requests } = info;

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
      const inked = await inkedPixels(status, ['connections-chart', 'in-rate-chart', 'out-rate-chart']);
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
    stopWatchdog();
    if (browser) await browser.close().catch(() => {});
    server.child.kill('SIGTERM');
  }
}

main().catch((err) => console.log(`FAIL unexpected: ${err.stack || err}`)).finally(() => finish('status page'));
