// What the browser tests of the chat, dashboard, game and status pages share: named
// checks counted in a fixed order, an example server started on a free port
// and stopped with SIGTERM, Debian's Chromium through playwright-core, pages
// that record their script errors, and a canvas's inked pixels.

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Pages in the background keep their timers and frames at full rate.
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
];
const STARTUP_TIMEOUT_MS = 20_000; // server prints its listening line
const LAUNCH_TIMEOUT_MS = 60_000; // browser starts
export const STEP_TIMEOUT_MS = 10_000; // every wait inside a page
const SHUTDOWN_TIMEOUT_MS = 10_000; // server exits after SIGTERM
const LISTENING_RE = /^listening on ws:\/\/127\.0\.0\.1:(\d+)$/;

export class Failure extends Error {}

export function expect(condition, message) {
  if (!condition) throw new Failure(message);
}

export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Failure(`${what} timed out after ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Named checks, each counted once in the order of `names`. A check that
    could not run (an earlier step failed) counts as failed, so the totals
    never shrink. `passed(name)` says whether one has passed so far.
    `finish(label)` prints `label: N passed, M failed` and exits 0 only if
    all passed. */
export function checks(names) {
  const results = new Map(); // name -> ok
  async function check(name, fn) {
    if (!names.includes(name)) throw new Error(`unknown check: ${name}`);
    try {
      await fn();
      results.set(name, true);
      console.log(`PASS ${name}`);
      return true;
    } catch (err) {
      const detail = err instanceof Failure ? err.message : (err && err.stack) || String(err);
      results.set(name, false);
      console.log(`FAIL ${name}\n     ${detail.split('\n').join('\n     ')}`);
      return false;
    }
  }
  function finish(label) {
    let passed = 0;
    for (const name of names) {
      if (results.get(name)) ++passed;
      else if (!results.has(name)) console.log(`FAIL ${name}\n     not run`);
    }
    const failed = names.length - passed;
    console.log(`${label}: ${passed} passed, ${failed} failed`);
    process.exit(failed === 0 ? 0 : 1);
  }
  return { check, finish, passed: (name) => results.get(name) === true };
}

/** Starts `binary --port 0 ...args`; `port` resolves with the port it
    listens on. Its last lines of output are kept in `output`. */
export function startServer(binary, args = []) {
  const child = spawn(binary, ['--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output = [];
  const remember = (line) => {
    output.push(line);
    if (output.length > 40) output.shift();
  };
  const exited = new Promise((resolveExit) => {
    child.on('exit', (code, signal) => resolveExit({ code, signal }));
    child.on('error', (err) => {
      remember(`spawn error: ${err.message}`);
      resolveExit({ code: null, signal: null, error: err });
    });
  });
  createInterface({ input: child.stderr }).on('line', (line) => remember(`stderr: ${line}`));
  const stdout = createInterface({ input: child.stdout });
  const listening = new Promise((resolvePort, reject) => {
    let first = true;
    stdout.on('line', (line) => {
      remember(`stdout: ${line}`);
      if (!first) return;
      first = false;
      const match = LISTENING_RE.exec(line);
      if (match) resolvePort(Number(match[1]));
      else reject(new Failure(`unexpected first line from the server: ${JSON.stringify(line)}`));
    });
    exited.then(({ code, signal, error }) =>
      reject(new Failure(error ? `could not start ${binary}: ${error.message}`
        : `server exited before listening (code ${code}, signal ${signal})`)));
  });
  const port = withTimeout(listening, STARTUP_TIMEOUT_MS, 'server start');
  port.catch(() => {}); // handled by the caller
  return { child, port, exited, output };
}

/** SIGTERM, then SIGKILL if it has not exited in 10 s; resolves with how it ended. */
export async function stopServer(server) {
  const { child, exited } = server;
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined)
    return exited;
  child.kill('SIGTERM');
  try {
    return await withTimeout(exited, SHUTDOWN_TIMEOUT_MS, 'server shutdown');
  } catch {
    child.kill('SIGKILL');
    await withTimeout(exited, SHUTDOWN_TIMEOUT_MS, 'server kill').catch(() => {});
    return { code: null, signal: 'SIGKILL', killed: true };
  }
}

/** Stops `server` with SIGTERM; throws unless it exits with status 0. */
export async function expectCleanStop(server) {
  const { code, signal } = await stopServer(server);
  expect(code === 0, `the server exited with code ${code}, signal ${signal}; last output:\n` +
    server.output.join('\n'));
}

/** Kills `server` and exits 1 if the test is still running after `ms`. */
export function watchdog(ms, server) {
  const timer = setTimeout(() => {
    console.log('FAIL watchdog: the test took too long');
    server.child.kill('SIGKILL');
    process.exit(1);
  }, ms);
  return () => clearTimeout(timer);
}

export function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: LAUNCH_TIMEOUT_MS });
}

/** A page of its own browser context at `url`, recording script errors and
    every request it makes. */
export async function openPage(browser, label, url, viewport = { width: 1100, height: 760 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const info = { label, page, context, errors: [], requests: [] };
  page.on('pageerror', (err) => info.errors.push(err.message));
  page.on('console', (msg) => { if (msg.type() === 'error') info.errors.push(msg.text()); });
  page.on('request', (req) => info.requests.push(req.url()));
  const response = await page.goto(url, { waitUntil: 'load' });
  expect(response && response.ok(), `${label}: GET ${url} answered ${response ? response.status() : 'nothing'}`);
  return info;
}

/** Throws if the page of `info` requested anything from outside `base`
    or had a script error. */
export function expectSelfContained(info, base) {
  const elsewhere = info.requests.filter((url) => !url.startsWith(`${base}/`));
  expect(elsewhere.length === 0, `${info.label}: requests elsewhere: ${elsewhere.join(', ')}`);
  expect(info.errors.length === 0, `${info.label}: ${info.errors.join('\n')}`);
}

/** How many pixels of each canvas are not transparent. */
export function inkedPixels(page, ids) {
  return page.evaluate((canvasIds) => canvasIds.map((id) => {
    const c = document.getElementById(id);
    const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let ink = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) ++ink;
    return ink;
  }), ids);
}

/** The sum of a Prometheus metric's samples at /metrics whose labels
    include every `key="value"` in `labels`. */
export async function metric(base, name, labels = {}) {
  const text = await (await fetch(`${base}/metrics`)).text();
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!wanted.every((pair) => line.includes(pair))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
