// Browser test for the mallard_game example: two pages in headless Chromium
// (playwright-core, Debian's browser) play in one room. Arrow keys held on
// one page move its dot on both, as the server's snapshots say; a client
// that breaks the protocol is closed with the code RFC 6455 names while the
// game goes on; a page that leaves disappears from the other.
//
// Usage (dependencies from tests/browser/node_modules: `npm ci` there once):
//   node tests/browser/game.test.mjs path/to/mallard_game ARTIFACT_DIR
// Environment: CHROMIUM (default /usr/bin/chromium). The last line printed
// is `game: N passed, M failed`; the exit status is 0 only if all passed.

import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  checks, expect, expectCleanStop, expectSelfContained, inkedPixels, launchBrowser, openPage,
  startServer, watchdog,
} from './harness.mjs';

const HOLD_MS = 600; // how long a key is held
const { check, finish } = checks([
  'server starts and prints its listening line',
  'alice and bob join the room and each sees both dots',
  'alice holds the right arrow: her dot moves right on both pages, and bob\'s stays',
  'bob holds the down (or up) arrow: his dot moves so on alice\'s page',
  'snapshots arrive at the tick rate',
  'the arena is drawn; screenshot saved',
  'a text message closes with 1003 and a malformed input with 1007; the game goes on',
  'bob leaves and his dot disappears from alice\'s page',
  'no script errors and nothing loaded from elsewhere',
  'the server stops on SIGTERM',
]);

const playerOf = (info, id) => info.page.evaluate((which) => {
  const p = window.game.players.get(which);
  return p ? { x: p.x, y: p.y } : null;
}, id);

async function hold(info, key, ms) {
  await info.page.keyboard.down(key);
  await info.page.waitForTimeout(ms); // the key held for a span of time: the input itself
  await info.page.keyboard.up(key);
}

async function main() {
  const [binary, artifactArg] = process.argv.slice(2);
  if (!binary || !artifactArg) {
    console.error('usage: node game.test.mjs MALLARD_GAME ARTIFACT_DIR');
    process.exit(2);
  }
  const artifacts = resolve(artifactArg);
  mkdirSync(artifacts, { recursive: true });
  const server = startServer(binary, ['--tick-hz', '30']);
  const stopWatchdog = watchdog(150_000, server);
  let browser;
  try {
    let base;
    await check('server starts and prints its listening line', async () => {
      base = `http://127.0.0.1:${await server.port}`;
    });
    if (!base) return;
    browser = await launchBrowser();
    let alice, bob, aliceId, bobId;
    await check('alice and bob join the room and each sees both dots', async () => {
      alice = await openPage(browser, 'alice', `${base}/?room=arena&name=alice`, { width: 1000, height: 700 });
      await alice.page.waitForFunction(() => window.game.id > 0 && window.game.players.size === 1);
      bob = await openPage(browser, 'bob', `${base}/?room=arena&name=bob`, { width: 1000, height: 700 });
      for (const info of [alice, bob])
        await info.page.waitForFunction(() => window.game.id > 0 && window.game.players.size === 2);
      aliceId = await alice.page.evaluate(() => window.game.id);
      bobId = await bob.page.evaluate(() => window.game.id);
      expect(aliceId !== bobId, `both pages have id ${aliceId}`);
      const names = await alice.page.evaluate(() => [...window.game.players.values()].map((p) => p.name).sort());
      expect(names.join() === 'alice,bob', `alice's page names ${names.join(', ')}`);
    });
    if (!bob) return;

    // Waits until `id`'s dot on `info`'s page satisfies `moved(before, now)`.
    const waitForMove = (info, id, before, axis, sign) => info.page.waitForFunction(
      ({ which, start, along, direction }) => {
        const p = window.game.players.get(which);
        return p && (p[along] - start[along]) * direction >= 60;
      }, { which: id, start: before, along: axis, direction: sign });

    await check('alice holds the right arrow: her dot moves right on both pages, and bob\'s stays', async () => {
      const aliceBefore = await playerOf(alice, aliceId);
      const bobBefore = await playerOf(alice, bobId);
      expect(aliceBefore.x < 800 - 100, `alice starts at x ${aliceBefore.x}, too near the right wall`);
      await alice.page.bringToFront();
      await hold(alice, 'ArrowRight', HOLD_MS);
      await waitForMove(alice, aliceId, aliceBefore, 'x', 1);
      await waitForMove(bob, aliceId, aliceBefore, 'x', 1);
      // Both pages draw the server's positions: once it stops, the same.
      await alice.page.waitForTimeout(200); // a few ticks after the key is up
      const onAlice = await playerOf(alice, aliceId);
      const onBob = await playerOf(bob, aliceId);
      expect(onAlice.x === onBob.x && onAlice.y === onBob.y,
        `alice at ${JSON.stringify(onAlice)} on her page, ${JSON.stringify(onBob)} on bob's`);
      expect(onAlice.y === aliceBefore.y, `alice moved vertically: ${aliceBefore.y} to ${onAlice.y}`);
      const bobNow = await playerOf(alice, bobId);
      expect(bobNow.x === bobBefore.x && bobNow.y === bobBefore.y, 'bob moved without a key');
    });
    await check('bob holds the down (or up) arrow: his dot moves so on alice\'s page', async () => {
      const bobBefore = await playerOf(alice, bobId);
      const down = bobBefore.y < 250; // away from the nearer wall
      await bob.page.bringToFront();
      await hold(bob, down ? 'ArrowDown' : 'ArrowUp', HOLD_MS);
      await waitForMove(alice, bobId, bobBefore, 'y', down ? 1 : -1);
    });
    await check('snapshots arrive at the tick rate', async () => {
      const before = await alice.page.evaluate(() => ({ n: window.game.snapshots, tick: window.game.tick, t: performance.now() }));
      await alice.page.waitForFunction((n) => window.game.snapshots >= n + 30, before.n);
      const after = await alice.page.evaluate(() => ({ n: window.game.snapshots, tick: window.game.tick, t: performance.now() }));
      const rate = (after.n - before.n) / ((after.t - before.t) / 1000);
      expect(after.tick - before.tick === after.n - before.n,
        `ticks ${before.tick}..${after.tick} but ${after.n - before.n} snapshots: some were skipped`);
      expect(rate > 15 && rate < 45, `${rate.toFixed(1)} snapshots/s at 30 ticks/s`);
    });
    await check('the arena is drawn; screenshot saved', async () => {
      const [ink] = await inkedPixels(alice.page, ['arena']);
      expect(ink > 1000, `the arena has ${ink} inked pixels`);
      await alice.page.screenshot({ path: join(artifacts, 'game.png') });
    });
    await check('a text message closes with 1003 and a malformed input with 1007; the game goes on', async () => {
      const codes = await alice.page.evaluate(async () => {
        const closeCode = (send) => new Promise((done) => {
          const ws = new WebSocket(`ws://${location.host}/ws/game/arena?name=rogue`);
          ws.onopen = () => send(ws);
          ws.onclose = (event) => done(event.code);
        });
        return [await closeCode((ws) => ws.send('up')), await closeCode((ws) => ws.send(new Uint8Array([1, 2])))];
      });
      expect(codes[0] === 1003 && codes[1] === 1007, `close codes ${codes.join(', ')}`);
      const n = await bob.page.evaluate(() => window.game.snapshots);
      await bob.page.waitForFunction((then) => window.game.snapshots > then + 5 && window.game.players.size === 2, n);
    });
    await check('bob leaves and his dot disappears from alice\'s page', async () => {
      await bob.context.close();
      await alice.page.waitForFunction((id) => !window.game.players.has(id) && window.game.players.size === 1, bobId);
    });
    await check('no script errors and nothing loaded from elsewhere', async () => {
      for (const info of [alice, bob]) expectSelfContained(info, base);
    });
    await browser.close();
    browser = undefined;
    await check('the server stops on SIGTERM', () => expectCleanStop(server));
  } finally {
    stopWatchdog();
    if (browser) await browser.close().catch(() => {});
    server.child.kill('SIGKILL');
  }
}

main().catch((err) => console.log(`FAIL unexpected: ${err.stack || err}`)).finally(() => finish('game'));
