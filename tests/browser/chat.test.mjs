// Browser test for the mallard chat example: three real browser pages chat
// through the example server, driven with playwright-core and the system's
// Chromium (no browser is downloaded). A second run starts the server with
// --token: pages with the right token in their address chat, a page with a
// wrong one is refused and says so, and a direct upgrade request without the
// right token is answered HTTP 401.
//
// Usage (dependencies are resolved from tests/browser/node_modules, so run
// `npm ci` there once; the script itself can be started from any directory):
//   (cd tests/browser && npm ci)
//   node tests/browser/chat.test.mjs path/to/mallard_chat ARTIFACT_DIR
//
// Environment: CHROMIUM (default /usr/bin/chromium) selects the browser binary.
// The last line printed is `browser: N passed, M failed`; the exit status is 0
// only when every check passed.

import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { request } from 'node:http';
import { join, resolve } from 'node:path';
import {
  checks, expect, Failure, launchBrowser, startServer, stopServer, withTimeout,
} from './harness.mjs';

const STARTUP_TIMEOUT_MS = 20_000; // server prints its listening line
const STEP_TIMEOUT_MS = 10_000; // every wait inside a page
const WATCHDOG_MS = 180_000; // the whole run

const ALICE_TEXT = 'hello from alice';
const CAROL_TEXT = 'hello from carol';
const TOKEN = 's3cret';
const DAVE_TEXT = 'hello from dave, with a token';

// ---- checks ----------------------------------------------------------------

// Every named check is counted, in this order. When an early step fails the
// checks that could not run are counted as failed, so the totals never shrink.
const OPEN_CHECKS = [
  'server starts and prints its listening line',
  'page is served at / with its script and stylesheet',
  'alice joins lobby and sees "connected to lobby"',
  'bob joins lobby and sees "connected to lobby"',
  'carol joins other (URL parameters, autojoin) and sees "connected to other"',
  'pages connect to /ws/chat/<room>?name=<name>',
  'bob sees alice\'s join notice or member count 2',
  'alice sends with Enter and sees her own message echoed',
  'bob sees alice\'s message within 10 s',
  'carol sends with the button and sees her own message',
  'carol does not see alice\'s message (other room)',
  'no script errors on any page',
  'screenshot of bob\'s page saved',
];
// The second run, with `--token s3cret`.
const TOKEN_CHECKS = [
  'server with --token starts and prints its listening line',
  'upgrade without the token or with a wrong one: HTTP 401 with a body; right token: 101',
  'dave (?token=s3cret, autojoin) joins lobby with the token in the WebSocket URL',
  'erin (?token=s3cret, form) joins lobby with the token in the WebSocket URL',
  'dave\'s message reaches dave and erin',
  'mallory (?token=wrong) does not connect and the page says why',
  'no script errors on the token run\'s pages',
];
const CHECKS = [...OPEN_CHECKS, ...TOKEN_CHECKS];

const { check, finish, passed } = checks(CHECKS);
let activeServer = null; // the running server's child process, for the watchdog

// ---- pages ---------------------------------------------------------------------

async function openPage(browser, label, url) {
  const context = await browser.newContext({ viewport: { width: 900, height: 640 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
  const info = { label, page, context, errors: [], console: [], sockets: [], failedRequests: [] };
  page.on('pageerror', (err) => info.errors.push(err.message));
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') info.console.push(`${msg.type()}: ${msg.text()}`);
  });
  page.on('websocket', (ws) => info.sockets.push(ws.url()));
  page.on('requestfailed', (req) => info.failedRequests.push(`${req.url()}: ${req.failure()?.errorText}`));
  page.on('response', (res) => {
    if (res.status() >= 400) info.failedRequests.push(`${res.url()}: HTTP ${res.status()}`);
  });
  const response = await page.goto(url, { waitUntil: 'load' });
  expect(response && response.ok(), `${label}: GET ${url} answered ${response ? response.status() : 'nothing'}`);
  return info;
}

async function joinWithForm(info, room, name) {
  const { page } = info;
  await page.fill('#room', room);
  await page.fill('#name', name);
  await page.click('#join');
}

async function waitForStatus(info, expected) {
  try {
    await info.page.waitForFunction(
      (text) => document.querySelector('#status')?.textContent.trim() === text,
      expected, { timeout: STEP_TIMEOUT_MS });
  } catch {
    const shown = await info.page.textContent('#status').catch(() => '?');
    throw new Failure(`${info.label}: #status did not become "${expected}" within ` +
      `${STEP_TIMEOUT_MS / 1000} s; it shows "${shown?.trim()}"`);
  }
}

// True when the page's #messages has a .message from `name` with text `text`.
function hasMessage(info, name, text) {
  return info.page.evaluate(([n, t]) => [...document.querySelectorAll('#messages .message')].some(
    (m) => m.querySelector('.name')?.textContent === n && m.querySelector('.text')?.textContent === t),
  [name, text]);
}

async function waitForMessage(info, name, text) {
  try {
    await info.page.waitForFunction(([n, t]) => [...document.querySelectorAll('#messages .message')].some(
      (m) => m.querySelector('.name')?.textContent === n && m.querySelector('.text')?.textContent === t),
    [name, text], { timeout: STEP_TIMEOUT_MS });
  } catch {
    throw new Failure(`${info.label}: no .message from "${name}" with text "${text}" within ` +
      `${STEP_TIMEOUT_MS / 1000} s`);
  }
}

// What a page shows, for failure reports.
async function describePage(info) {
  const lines = [`--- ${info.label}'s page ---`];
  try {
    const shown = await withTimeout(info.page.evaluate(() => ({
      url: location.href,
      status: document.querySelector('#status')?.textContent.trim(),
      members: document.querySelector('#members')?.textContent.trim(),
      joined: document.querySelector('#leave') ? !document.querySelector('#leave').hidden : null,
      messages: [...document.querySelectorAll('#messages > *')].map((el) =>
        el.classList.contains('message')
          ? `[${el.className}] ${el.querySelector('.name')?.textContent}: ${el.querySelector('.text')?.textContent}`
          : `[${el.className}] ${el.textContent}`),
    })), 5_000, 'reading the page');
    lines.push(`url: ${shown.url}`, `#status: ${shown.status}`, `#members: ${shown.members}`,
      `#leave visible: ${shown.joined}`, `#messages (${shown.messages.length}):`);
    for (const m of shown.messages) lines.push(`  ${m}`);
  } catch (err) {
    lines.push(`(could not read the page: ${err.message})`);
  }
  lines.push(`websockets opened: ${info.sockets.join(', ') || 'none'}`);
  if (info.errors.length) lines.push(`script errors: ${info.errors.join(' | ')}`);
  if (info.console.length) lines.push(`console: ${info.console.join(' | ')}`);
  if (info.failedRequests.length) lines.push(`failed requests: ${info.failedRequests.join(' | ')}`);
  return lines.join('\n');
}

// ---- the run ---------------------------------------------------------------------

// After a failed check: what each page shows, the server's last output, and a
// screenshot of every page (except those listed in `keep`).
async function reportFailure(pages, server, artifactDir, prefix, keep = []) {
  for (const info of pages) console.log(await describePage(info));
  if (server) console.log(`--- server output (last lines) ---\n${server.output.join('\n') || '(none)'}`);
  for (const info of pages) {
    if (keep.includes(info.label)) continue;
    try {
      mkdirSync(artifactDir, { recursive: true });
      await info.page.screenshot({ path: join(artifactDir, `${prefix}-${info.label}-failure.png`), timeout: 5_000 });
    } catch {
      // the page may be gone; the text description above is what matters
    }
  }
}

async function run(binary, artifactDir) {
  const shared = { browser: null }; // one browser for both runs
  try {
    await runOpen(binary, artifactDir, shared);
    await runWithToken(binary, artifactDir, shared);
  } finally {
    if (shared.browser) await withTimeout(shared.browser.close(), 15_000, 'closing the browser').catch((err) =>
      console.log(`could not close the browser: ${err.message}`));
  }
}

// The first run: an open server, three pages in two rooms.
async function runOpen(binary, artifactDir, shared) {
  let server = null;
  let browser = null;
  const pages = [];

  try {
    // 1. the server
    let port = 0;
    const started = await check(CHECKS[0], async () => {
      server = startServer(binary);
      activeServer = server.child;
      port = await withTimeout(server.port, STARTUP_TIMEOUT_MS, 'waiting for the listening line');
    });
    if (!started) return;
    const origin = `http://127.0.0.1:${port}`;

    // 2. the browser and the three pages
    let alice, bob, carol;
    const served = await check(CHECKS[1], async () => {
      browser = shared.browser = await launchBrowser();
      alice = await openPage(browser, 'alice', `${origin}/`);
      pages.push(alice);
      const loaded = await alice.page.evaluate(() => ({
        status: document.getElementById('status')?.textContent.trim(),
        hasForm: ['room', 'name', 'join', 'leave', 'messages', 'text', 'send', 'status', 'members']
          .filter((id) => !document.getElementById(id)),
        room: document.getElementById('room')?.value,
        styled: getComputedStyle(document.body).margin === '0px',
      }));
      expect(loaded.hasForm.length === 0, `elements missing from the page: #${loaded.hasForm.join(', #')}`);
      expect(loaded.room === 'lobby', `#room defaults to "${loaded.room}", expected "lobby"`);
      expect(loaded.styled, 'style.css does not seem to be applied');
      expect(loaded.status === 'disconnected',
        `#status shows "${loaded.status}" before joining, expected "disconnected" (did app.js run?)`);
      const failed = alice.failedRequests.filter((r) => !r.includes('favicon'));
      expect(failed.length === 0, `requests failed: ${failed.join(', ')}`);
      bob = await openPage(browser, 'bob', `${origin}/`);
      pages.push(bob);
    });
    if (!served) return;

    // 3. joining: bob first, so that he sees alice arrive
    const bobJoined = await check(CHECKS[3], async () => {
      await joinWithForm(bob, 'lobby', 'bob');
      await waitForStatus(bob, 'connected to lobby');
    });
    const aliceJoined = await check(CHECKS[2], async () => {
      await joinWithForm(alice, 'lobby', 'alice');
      await waitForStatus(alice, 'connected to lobby');
    });
    const carolJoined = await check(CHECKS[4], async () => {
      carol = await openPage(browser, 'carol', `${origin}/?room=other&name=carol&autojoin=1`);
      pages.push(carol);
      await waitForStatus(carol, 'connected to other');
      const prefilled = await carol.page.evaluate(() =>
        [document.getElementById('room').value, document.getElementById('name').value]);
      expect(prefilled[0] === 'other' && prefilled[1] === 'carol',
        `URL parameters did not fill the form: room "${prefilled[0]}", name "${prefilled[1]}"`);
    });

    await check(CHECKS[5], async () => {
      const expected = {
        alice: `ws://127.0.0.1:${port}/ws/chat/lobby?name=alice`,
        bob: `ws://127.0.0.1:${port}/ws/chat/lobby?name=bob`,
        carol: `ws://127.0.0.1:${port}/ws/chat/other?name=carol`,
      };
      for (const info of pages) {
        expect(info.sockets.includes(expected[info.label]),
          `${info.label} opened ${info.sockets.join(', ') || 'no websocket'}, expected ${expected[info.label]}`);
      }
    });

    await check(CHECKS[6], async () => {
      expect(bobJoined && aliceJoined, 'alice or bob did not join');
      try {
        await bob.page.waitForFunction(() =>
          document.querySelector('#members')?.textContent.trim() === '2' ||
          [...document.querySelectorAll('#messages .notice')].some((n) => n.textContent.includes('alice')),
        null, { timeout: STEP_TIMEOUT_MS });
      } catch {
        throw new Failure(`bob's page shows neither a notice about alice nor member count 2 ` +
          `within ${STEP_TIMEOUT_MS / 1000} s`);
      }
    });

    // 4. messages
    let aliceSent = false;
    await check(CHECKS[7], async () => {
      expect(aliceJoined, 'alice did not join');
      await alice.page.fill('#text', ALICE_TEXT);
      await alice.page.press('#text', 'Enter');
      aliceSent = true;
      await waitForMessage(alice, 'alice', ALICE_TEXT);
      const left = await alice.page.inputValue('#text');
      expect(left === '', `#text still holds "${left}" after sending`);
    });

    const bobGot = await check(CHECKS[8], async () => {
      expect(aliceSent, 'alice could not send her message');
      expect(bobJoined, 'bob did not join');
      await waitForMessage(bob, 'alice', ALICE_TEXT);
    });

    // Carol's own message is sent after bob has alice's, and is sent and
    // echoed on the same connection that alice's message would have reached
    // her by; so once it arrives, alice's would have too if rooms leaked.
    const carolGot = await check(CHECKS[9], async () => {
      expect(carolJoined, 'carol did not join');
      await carol.page.fill('#text', CAROL_TEXT);
      await carol.page.click('#send');
      await waitForMessage(carol, 'carol', CAROL_TEXT);
    });

    await check(CHECKS[10], async () => {
      expect(bobGot, 'bob never got alice\'s message, so its absence for carol means nothing');
      expect(carolGot, 'carol never got her own message, so the absence of alice\'s means nothing');
      const leaked = await hasMessage(carol, 'alice', ALICE_TEXT);
      const anywhere = await carol.page.evaluate((t) =>
        document.getElementById('messages').textContent.includes(t), ALICE_TEXT);
      expect(!leaked && !anywhere, 'carol\'s page (room "other") shows alice\'s message from "lobby"');
    });

    await check(CHECKS[11], async () => {
      const errors = pages.filter((p) => p.errors.length).map((p) => `${p.label}: ${p.errors.join(' | ')}`);
      expect(errors.length === 0, `script errors: ${errors.join('; ')}`);
    });

    await check(CHECKS[12], async () => {
      mkdirSync(artifactDir, { recursive: true });
      const file = join(artifactDir, 'chat.png');
      await bob.page.screenshot({ path: file, timeout: STEP_TIMEOUT_MS });
      console.log(`screenshot: ${file}`);
    });
  } finally {
    if (OPEN_CHECKS.some((name) => !passed(name))) {
      await reportFailure(pages, server, artifactDir, 'chat', passed(CHECKS[12]) ? ['bob'] : []);
    }
    for (const info of pages) await info.context.close().catch(() => {});
    if (server) await stopServer(server);
  }
}

// A WebSocket upgrade request sent with node:http; resolves with the status
// and body of the answer (an empty body for a 101, whose socket is closed).
function upgradeRequest(port, path) {
  return new Promise((resolveAnswer, reject) => {
    const req = request({
      host: '127.0.0.1',
      port,
      path,
      agent: false,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
        Origin: `http://127.0.0.1:${port}`,
      },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolveAnswer({ status: res.statusCode, body: '' });
    });
    req.on('response', (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('end', () => {
        resolveAnswer({ status: res.statusCode, body: Buffer.concat(chunks).toString() });
        req.destroy();
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

// The second run: the server requires `?token=s3cret` on the WebSocket URL.
async function runWithToken(binary, artifactDir, shared) {
  const [started, refused, daveJoinedCheck, erinJoinedCheck, delivered, mallorySees, noErrors] = TOKEN_CHECKS;
  let server = null;
  const pages = [];

  try {
    let port = 0;
    const up = await check(started, async () => {
      server = startServer(binary, ['--token', TOKEN]);
      activeServer = server.child;
      port = await withTimeout(server.port, STARTUP_TIMEOUT_MS, 'waiting for the listening line');
    });
    if (!up) return;
    const origin = `http://127.0.0.1:${port}`;
    const socketUrl = (room, name, token) =>
      `ws://127.0.0.1:${port}/ws/chat/${room}?name=${name}&token=${token}`;

    await check(refused, async () => {
      const cases = [
        ['no token', '/ws/chat/lobby?name=x', 401],
        ['a wrong token', '/ws/chat/lobby?name=x&token=wrong', 401],
        ['the right token', `/ws/chat/lobby?name=x&token=${TOKEN}`, 101],
      ];
      for (const [what, path, expected] of cases) {
        const { status, body } = await withTimeout(upgradeRequest(port, path), STEP_TIMEOUT_MS,
          `the upgrade request with ${what}`);
        expect(status === expected, `upgrade with ${what} (${path}) answered HTTP ${status}, expected ${expected}`);
        if (expected === 401) {
          expect(body.trim() !== '', `the HTTP 401 for an upgrade with ${what} has an empty body`);
          console.log(`  ${what}: HTTP ${status} ${JSON.stringify(body.trim())}`);
        }
      }
    });

    let dave, erin, mallory;
    const daveJoined = await check(daveJoinedCheck, async () => {
      if (!shared.browser) shared.browser = await launchBrowser();
      dave = await openPage(shared.browser, 'dave', `${origin}/?room=lobby&name=dave&token=${TOKEN}&autojoin=1`);
      pages.push(dave);
      await waitForStatus(dave, 'connected to lobby');
      const expected = socketUrl('lobby', 'dave', TOKEN);
      expect(dave.sockets.includes(expected),
        `dave opened ${dave.sockets.join(', ') || 'no websocket'}, expected ${expected}`);
    });

    const erinJoined = await check(erinJoinedCheck, async () => {
      if (!shared.browser) shared.browser = await launchBrowser();
      erin = await openPage(shared.browser, 'erin', `${origin}/?token=${TOKEN}`);
      pages.push(erin);
      await joinWithForm(erin, 'lobby', 'erin');
      await waitForStatus(erin, 'connected to lobby');
      const expected = socketUrl('lobby', 'erin', TOKEN);
      expect(erin.sockets.includes(expected),
        `erin opened ${erin.sockets.join(', ') || 'no websocket'}, expected ${expected}`);
    });

    await check(delivered, async () => {
      expect(daveJoined && erinJoined, 'dave or erin did not join');
      await dave.page.fill('#text', DAVE_TEXT);
      await dave.page.press('#text', 'Enter');
      await waitForMessage(dave, 'dave', DAVE_TEXT);
      await waitForMessage(erin, 'dave', DAVE_TEXT);
    });

    await check(mallorySees, async () => {
      if (!shared.browser) shared.browser = await launchBrowser();
      mallory = await openPage(shared.browser, 'mallory', `${origin}/?room=lobby&name=mallory&token=wrong&autojoin=1`);
      pages.push(mallory);
      try {
        await mallory.page.waitForFunction(() => document.querySelector('#status')?.classList.contains('error'),
          null, { timeout: STEP_TIMEOUT_MS });
      } catch {
        const shown = await mallory.page.textContent('#status').catch(() => '?');
        throw new Failure(`mallory's #status shows no error within ${STEP_TIMEOUT_MS / 1000} s; ` +
          `it shows "${shown?.trim()}"`);
      }
      const shown = await mallory.page.evaluate(() => ({
        status: document.querySelector('#status').textContent.trim(),
        statusVisible: document.querySelector('#status').getBoundingClientRect().height > 0,
        notices: [...document.querySelectorAll('#messages .notice.error')].map((n) => n.textContent),
        joined: !document.querySelector('#leave').hidden,
        canWrite: !document.querySelector('#text').disabled,
      }));
      const attempted = socketUrl('lobby', 'mallory', 'wrong');
      expect(mallory.sockets.includes(attempted),
        `mallory opened ${mallory.sockets.join(', ') || 'no websocket'}, expected ${attempted}`);
      expect(shown.status.startsWith('could not connect to lobby'),
        `#status shows "${shown.status}", expected it to start with "could not connect to lobby"`);
      expect(shown.statusVisible, '#status is not visible');
      expect(!shown.joined && !shown.canWrite, 'the page looks joined: Leave is shown or #text is enabled');
      expect(shown.notices.some((n) => /token/.test(n)),
        `no error notice in #messages mentions the access token: ${JSON.stringify(shown.notices)}`);
      mkdirSync(artifactDir, { recursive: true });
      const file = join(artifactDir, 'chat-refused.png');
      await mallory.page.screenshot({ path: file, timeout: STEP_TIMEOUT_MS });
      console.log(`  mallory's page: "${shown.status}" / "${shown.notices.join(' | ')}"; screenshot: ${file}`);
    });

    await check(noErrors, async () => {
      expect(pages.length > 0, 'no page was opened');
      const errors = pages.filter((p) => p.errors.length).map((p) => `${p.label}: ${p.errors.join(' | ')}`);
      expect(errors.length === 0, `script errors: ${errors.join('; ')}`);
    });
  } finally {
    if (TOKEN_CHECKS.some((name) => !passed(name))) {
      await reportFailure(pages, server, artifactDir, 'chat-token');
    }
    for (const info of pages) await info.context.close().catch(() => {});
    if (server) await stopServer(server);
  }
}

async function main() {
  const [binaryArg, artifactArg] = process.argv.slice(2);
  if (!binaryArg || !artifactArg) {
    console.error('usage: node chat.test.mjs path/to/mallard_chat ARTIFACT_DIR');
    process.exit(2);
  }
  const watchdog = setTimeout(() => {
    console.log(`FAIL the whole run took longer than ${WATCHDOG_MS / 1000} s`);
    if (activeServer && activeServer.exitCode === null && activeServer.signalCode === null) {
      activeServer.kill('SIGKILL');
    }
    finish('browser');
  }, WATCHDOG_MS);
  watchdog.unref();

  try {
    const binary = binaryArg.includes('/') ? resolve(binaryArg) : binaryArg;
    await run(binary, resolve(artifactArg));
  } catch (err) {
    console.log(`error: ${(err && err.stack) || err}`);
  }
  clearTimeout(watchdog);
  finish('browser');
}

await main();
