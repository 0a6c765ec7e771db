// Browser test for the mallard_dashboard example: its page in headless
// Chromium (playwright-core, Debian's browser) draws live charts of the
// server's samples, and a viewer that stops reading (stalled_viewer.py,
// over a socket with a small receive buffer) neither slows the page nor,
// when it reads again, gets a backlog: keep_latest hands it the newest
// sample. The server samples every 10 ms here, so that the stalled viewer
// falls behind by more than the kernel holds within seconds.
//
// Usage (dependencies from tests/browser/node_modules: `npm ci` there once):
//   node tests/browser/dashboard.test.mjs path/to/mallard_dashboard ARTIFACT_DIR
// Environment: CHROMIUM (default /usr/bin/chromium). The last line printed
// is `dashboard: N passed, M failed`; the exit status is 0 only if all passed.

import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
  checks, expect, expectCleanStop, expectSelfContained, Failure, inkedPixels, launchBrowser,
  metric, openPage, startServer, watchdog, withTimeout,
} from './harness.mjs';

const INTERVAL_MS = 10; // the server's sampling interval in this test
// The viewer reads nothing while this many samples are published: well over
// the ~170 that the kernel holds for it (8 KiB asked, doubled, at the
// server; 4 KiB at the viewer), the rest of which keep_latest must discard.
const STALL_SAMPLES = 600;
const CHARTS = ['cpu', 'memory', 'load', 'network'];
const PYTHON = '/usr/bin/python3';
const STALLED_VIEWER = join(dirname(fileURLToPath(import.meta.url)), 'stalled_viewer.py');

const { check, finish } = checks([
  'server starts and prints its listening line',
  'the page starts from the history and goes live',
  'the four charts are drawn',
  'the charts move as samples arrive',
  'a second viewer reads the history, then stops reading',
  'while it is stalled the page keeps up: at least 95 % of the samples published, in order',
  'the server discards samples for the stalled viewer (keep_latest) and closes no one',
  'reading again, the stalled viewer gets the newest sample, not the backlog',
  'screenshot of the dashboard saved',
  'the page loads nothing but itself, and has no script errors',
  'the server stops on SIGTERM',
]);

// The stalled viewer's reports, one JSON object per line, awaited in order.
function startStalledViewer(port) {
  const child = spawn(PYTHON, [STALLED_VIEWER, String(port)], { stdio: ['pipe', 'pipe', 'pipe'] });
  const reports = [];
  const waiting = [];
  const failures = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    const report = JSON.parse(line);
    if (waiting.length) waiting.shift()(report);
    else reports.push(report);
  });
  createInterface({ input: child.stderr }).on('line', (line) => failures.push(line));
  const next = (what) => withTimeout(new Promise((resolveReport, reject) => {
    if (reports.length) return resolveReport(reports.shift());
    waiting.push(resolveReport);
    child.on('exit', (code) => reject(new Failure(
      `the stalled viewer exited (code ${code}) before ${what}: ${failures.join(' / ')}`)));
  }), 15_000, `the stalled viewer's ${what}`);
  return { child, next };
}

async function main() {
  const [binary, artifactArg] = process.argv.slice(2);
  if (!binary || !artifactArg) {
    console.error('usage: node dashboard.test.mjs MALLARD_DASHBOARD ARTIFACT_DIR');
    process.exit(2);
  }
  const artifacts = resolve(artifactArg);
  mkdirSync(artifacts, { recursive: true });
  const server = startServer(binary, ['--interval-ms', String(INTERVAL_MS)]);
  const stopWatchdog = watchdog(150_000, server);
  let browser;
  let viewer;
  try {
    let base;
    let port;
    await check('server starts and prints its listening line', async () => {
      port = await server.port;
      base = `http://127.0.0.1:${port}`;
    });
    if (!base) return;
    browser = await launchBrowser();
    let page;
    await check('the page starts from the history and goes live', async () => {
      page = await openPage(browser, 'dashboard', `${base}/`);
      await page.page.waitForFunction(() =>
        document.querySelector('#status').textContent === 'live' && window.dashboard.received >= 20);
      const state = await page.page.evaluate(() => ({
        histories: window.dashboard.histories, kept: window.dashboard.samples.length,
      }));
      expect(state.histories === 1, `the page got ${state.histories} history messages`);
      expect(state.kept > 20, `the page keeps ${state.kept} samples`);
    });
    if (!page) return;
    await check('the four charts are drawn', async () => {
      const inked = await inkedPixels(page.page, CHARTS);
      expect(inked.every((ink) => ink > 500), `inked pixels per chart: ${inked.join(', ')}`);
    });
    await check('the charts move as samples arrive', async () => {
      const frame = () => page.page.evaluate(() => document.getElementById('network').toDataURL());
      const before = await frame();
      const receivedBefore = await page.page.evaluate(() => window.dashboard.received);
      await page.page.waitForFunction((n) => window.dashboard.received >= n + 50, receivedBefore);
      // The x axis follows the newest sample: the lines shift.
      await page.page.waitForFunction((then) => document.getElementById('network').toDataURL() !== then, before);
    });

    let historyLast = 0;
    await check('a second viewer reads the history, then stops reading', async () => {
      viewer = startStalledViewer(port);
      const history = await viewer.next('history');
      expect(history.event === 'history' && history.samples > 0, `first report: ${JSON.stringify(history)}`);
      historyLast = history.last;
      const stalled = await viewer.next('stall');
      expect(stalled.event === 'stalled', `second report: ${JSON.stringify(stalled)}`);
    });
    if (!historyLast) return;

    const readPage = () => page.page.evaluate(() => ({
      received: window.dashboard.received, gaps: window.dashboard.gaps, lastSeq: window.dashboard.lastSeq,
    }));
    let resumeAt = 0;
    await check('while it is stalled the page keeps up: at least 95 % of the samples published, in order', async () => {
      const start = await readPage();
      const started = Date.now();
      await page.page.waitForFunction((until) => window.dashboard.lastSeq >= until,
        historyLast + STALL_SAMPLES, { timeout: 60_000 });
      const end = await readPage();
      const seconds = (Date.now() - started) / 1000;
      resumeAt = end.lastSeq;
      const published = end.lastSeq - start.lastSeq;
      const got = end.received - start.received;
      // The page's own connection is keep_latest too: on a loaded machine
      // the browser may fall behind for a moment and miss a sample or two,
      // never the hundreds the stalled viewer misses.
      const skipped = end.gaps - start.gaps;
      expect(got + skipped === published, `the page got ${got} and skipped ${skipped} of ${published}`);
      expect(skipped <= published / 20, `the page skipped ${skipped} of the ${published} samples published`);
      console.log(`     (${got} samples in ${seconds.toFixed(1)} s)`);
    });
    await check('the server discards samples for the stalled viewer (keep_latest) and closes no one', async () => {
      const dropped = await metric(base, 'mallard_slow_consumer_dropped_messages_total',
        { route: 'dashboard', policy: 'keep_latest' });
      expect(dropped > 0, `mallard_slow_consumer_dropped_messages_total{policy="keep_latest"} is ${dropped}`);
      const closed = await metric(base, 'mallard_slow_consumer_closes_total');
      expect(closed === 0, `slow-consumer closes: ${closed}`);
      const open = await metric(base, 'mallard_connections_open', { route: 'dashboard' });
      expect(open === 2, `${open} connections open, expected the page and the stalled viewer`);
    });
    await check('reading again, the stalled viewer gets the newest sample, not the backlog', async () => {
      viewer.child.stdin.write(`resume ${resumeAt}\n`);
      const resumed = await viewer.next('samples after resuming');
      expect(resumed.event === 'resumed', `report: ${JSON.stringify(resumed)}`);
      const { seqs } = resumed;
      const missed = resumeAt - historyLast; // published while it read nothing
      const stale = seqs.filter((seq) => seq <= resumeAt).length;
      let jump = 0;
      for (let i = 1; i < seqs.length; ++i) jump = Math.max(jump, seqs[i] - seqs[i - 1]);
      expect(seqs.every((seq, i) => i === 0 || seq > seqs[i - 1]), `out of order: ${seqs.join(',')}`);
      // What the kernel held before the policy saw it fall behind comes
      // first, then one jump over everything the policy replaced.
      expect(stale < missed / 2, `it got ${stale} of the ${missed} samples it fell behind by`);
      expect(jump >= missed / 4, `its largest jump in sequence is ${jump} (it fell behind by ${missed})`);
      expect(resumed.seconds < 5, `the newest sample took ${resumed.seconds} s to arrive`);
    });

    await check('screenshot of the dashboard saved', async () => {
      await page.page.screenshot({ path: join(artifacts, 'dashboard.png'), fullPage: true });
    });
    await check('the page loads nothing but itself, and has no script errors', async () => {
      expectSelfContained(page, base);
    });
    await browser.close();
    browser = undefined;
    await check('the server stops on SIGTERM', () => expectCleanStop(server));
  } finally {
    stopWatchdog();
    if (viewer) viewer.child.kill('SIGKILL');
    if (browser) await browser.close().catch(() => {});
    server.child.kill('SIGKILL');
  }
}

main().catch((err) => console.log(`FAIL unexpected: ${err.stack || err}`)).finally(() => finish('dashboard'));
