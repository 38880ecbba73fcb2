// Shared helpers of the browser tests. The Go tests in cmd/devtrack
// (browser_test.go) set the system up and run one script per scenario with
// its configuration as JSON in DEVTRACK_TEST_CONFIG:
//   base, users {name: password}, adminToken, groupA, groupB (device ids),
//   tokens {device: token}, names {device: display name}, userDataDir,
//   artifacts (screenshot dir), prefix (screenshot name prefix), chromium,
//   plus scenario-specific keys.
// A script prints "NEED <what>" and reads one line from stdin ("OK" or
// "ERR why") when the Go test must act on the system.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const readline = require('node:readline');
const { chromium } = require('playwright-core');

const cfg = JSON.parse(process.env.DEVTRACK_TEST_CONFIG || '{}');
const t0 = Date.now();

function log(...args) {
  console.log(`[${((Date.now() - t0) / 1000).toFixed(2)}s]`, ...args);
}

// launch starts Chromium with a fresh profile and opens a page that fails
// the test on any dialog (alert, confirm, prompt) but a confirm() the test
// accepts with acceptConfirm, and records page errors.
async function launch() {
  const context = await chromium.launchPersistentContext(cfg.userDataDir, {
    executablePath: cfg.chromium || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    viewport: { width: 1280, height: 800 },
  });
  const page = context.pages()[0] || (await context.newPage());
  const problems = [];
  const expected = []; // confirm() dialogs the test means to accept
  page.on('dialog', async (d) => {
    const i = expected.findIndex((e) => d.type() === 'confirm' && e.message.test(d.message()));
    if (i >= 0) {
      const [e] = expected.splice(i, 1);
      await d.accept();
      e.accepted(d.message());
      return;
    }
    problems.push(`a ${d.type()} dialog opened: ${d.message()}`);
    await d.dismiss().catch(() => {});
  });
  // acceptConfirm accepts the next confirm() whose message matches; it
  // resolves to the message once accepted. Any other dialog still fails.
  const acceptConfirm = (message, timeout = 15000) => new Promise((resolve, reject) => {
    const e = { message, accepted: (m) => { clearTimeout(timer); resolve(m); } };
    const timer = setTimeout(() => {
      expected.splice(expected.indexOf(e), 1);
      reject(new Error(`no confirm() matching ${message} within ${timeout} ms`));
    }, timeout);
    expected.push(e);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  // The UI catches its listeners' exceptions and logs them: a console error
  // is a bug, unless it is the browser reporting a failed request (a 401
  // before login, a 403 the test asked for, a refused connection while the
  // gateway restarts).
  const network = /^Failed to load resource|^WebSocket connection to .* failed/;
  page.on('console', (m) => {
    if (m.type() !== 'error' && m.type() !== 'warning') return;
    log(`console.${m.type()}:`, m.text());
    if (m.type() === 'error' && !network.test(m.text())) problems.push(`console error: ${m.text()}`);
  });
  // Any script that runs where it should not would break CSP: record it.
  await page.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sample || ''}`);
    });
  });
  return { context, page, problems, acceptConfirm };
}

// login opens the UI, fills the login form (the visible form with a
// password input) and waits
// until the map page is live.
async function login(page, name, password) {
  await page.goto(cfg.base + '/');
  // The visible one: other pages (admin) have password forms too.
  const form = page.locator('form:visible').filter({ has: page.locator('input[type=password]') }).first();
  await form.waitFor({ state: 'visible', timeout: 15000 });
  await form.locator('input:not([type=password]):not([type=hidden]):not([type=submit])').first().fill(name);
  await form.locator('input[type=password]').fill(password);
  await form.locator('button[type=submit], input[type=submit], button:not([type])').first().click();
  await page.locator('#whoami').filter({ hasText: name }).waitFor({ timeout: 15000 });
  await waitLive(page);
  log(`logged in as ${name}`);
}

// waitLive waits until the live socket is up.
async function waitLive(page, timeout = 15000) {
  await page.waitForSelector('#live-status[data-state=live]', { timeout });
}

// README_VIEWPORT is the size of the README's screenshots.
const README_VIEWPORT = { width: 1280, height: 800 };

// screenshot keeps a PNG in the artifacts dir and prints its path. A name
// starting with "readme-" is a README screenshot (scripts/screenshots copies
// them to docs/screenshots): it keeps that name with no test prefix, so it
// is the same file on every run, and it is taken at README_VIEWPORT (the
// page's size is put back afterwards), with the mouse out of the way.
async function screenshot(page, name, { fullPage = false } = {}) {
  fs.mkdirSync(cfg.artifacts, { recursive: true });
  const readme = name.startsWith('readme-');
  const file = path.join(cfg.artifacts, readme ? `${name}.png` : `${cfg.prefix}-${name}.png`);
  if (!readme) {
    await page.screenshot({ path: file, fullPage });
    log(`screenshot: ${file}`);
    return file;
  }
  const size = page.viewportSize();
  const resize = size && (size.width !== README_VIEWPORT.width || size.height !== README_VIEWPORT.height);
  if (resize) await page.setViewportSize(README_VIEWPORT);
  await page.mouse.move(README_VIEWPORT.width - 1, README_VIEWPORT.height - 1);
  // Let a resize, tiles and transitions settle: two frames after the fonts.
  await page.evaluate(() => document.fonts.ready.then(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))));
  await page.screenshot({ path: file, fullPage });
  if (resize) await page.setViewportSize(size);
  log(`screenshot: ${file}`);
  return file;
}

// waitFor polls an async condition until it returns a truthy value.
async function waitFor(what, fn, { timeout = 15000, interval = 50 } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

// api calls the query API from node with the admin's token.
async function api(pathAndQuery) {
  const resp = await fetch(cfg.base + pathAndQuery, { headers: { Authorization: `Bearer ${cfg.adminToken}` } });
  const body = await resp.text();
  assert.equal(resp.status, 200, `GET ${pathAndQuery}: ${resp.status} ${body}`);
  return JSON.parse(body);
}

// ingest posts frames (one, or an array) with a device's token.
async function ingest(device, frames) {
  const resp = await fetch(cfg.base + '/api/v1/ingest', {
    method: 'POST',
    headers: { Authorization: `Bearer ${cfg.tokens[device]}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(frames),
  });
  const body = await resp.text();
  assert.equal(resp.status, 200, `ingest ${device}: ${resp.status} ${body}`);
  return JSON.parse(body);
}

let seq = 0;
function locationFrame(lat, lng) {
  return { type: 'location', id: `t-${Date.now()}-${++seq}`, ts: Date.now(), data: { lat, lng, speed: 4.2 } };
}
function logFrame(message, level = 'info') {
  return { type: 'log', id: `l-${Date.now()}-${++seq}`, ts: Date.now(), data: { level, message } };
}

// fleetOnMap counts what the map shows: standalone device markers and the
// sum of cluster counts (the UI's clusters are .dt-cluster divIcons; the
// plugin's default .marker-cluster is counted too).
async function fleetOnMap(page) {
  return page.evaluate(() => {
    const map = document.querySelector('#map');
    const ids = [...map.querySelectorAll('.dt-marker[data-device]')].map((e) => e.dataset.device);
    const clusters = [...map.querySelectorAll('.marker-cluster, .dt-cluster')].map((e) => parseInt(e.textContent.trim(), 10) || 0);
    return { ids, clusters, total: ids.length + clusters.reduce((a, b) => a + b, 0) };
  });
}

// markerBox is the on-screen box of a device's marker, or null.
async function markerBox(page, id) {
  return page.evaluate((id) => {
    const el = document.querySelector(`#map .dt-marker[data-device="${CSS.escape(id)}"]`);
    if (!el) return null;
    const r = el.getBoundingClientRect();
    return { x: r.left + r.width / 2, y: r.top + r.height / 2 };
  }, id);
}

// focusDevice clicks the device in the sidebar list and waits until the map
// has flown to it: its popup open, its marker standalone and still.
async function focusDevice(page, id) {
  await page.locator('#device-search').fill('');
  const item = page.locator(`#device-list li.device-item[data-device="${id}"]`);
  await item.click();
  await page.locator('.leaflet-popup .popup-name').waitFor({ timeout: 15000 });
  let prev = null;
  await waitFor(`marker of ${id} standalone and still after the fly-to`, async () => {
    const box = await markerBox(page, id);
    const still = box && prev && Math.abs(box.x - prev.x) < 0.5 && Math.abs(box.y - prev.y) < 0.5;
    prev = box;
    return still;
  }, { timeout: 15000, interval: 250 });
  log(`focused on ${id}`);
}

// watchMarker starts watching a marker's on-screen position on every frame;
// movedAt() then returns the epoch ms of the first change, or 0.
async function watchMarker(page, id) {
  await page.evaluate((id) => {
    const box = () => {
      const el = document.querySelector(`#map .dt-marker[data-device="${CSS.escape(id)}"]`);
      if (!el) return null;
      const r = el.getBoundingClientRect();
      return { x: r.left + r.width / 2, y: r.top + r.height / 2 };
    };
    const start = box();
    window.__moved = { at: 0, from: start, to: null };
    const tick = () => {
      const b = box();
      if (b && start && (Math.abs(b.x - start.x) > 2 || Math.abs(b.y - start.y) > 2)) {
        window.__moved.at = Date.now();
        window.__moved.to = b;
        return;
      }
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  }, id);
}

// moveAndMeasure sends a location for a focused device and returns how long
// its marker took to move on screen (took, ms from the send) and where the
// marker was before (from, screen px).
async function moveAndMeasure(page, id, lat, lng) {
  await watchMarker(page, id);
  const sent = Date.now();
  await ingest(id, locationFrame(lat, lng));
  const moved = await page.waitForFunction(() => window.__moved.at && window.__moved, null, { timeout: 10000, polling: 'raf' });
  const m = await moved.jsonValue();
  const took = m.at - sent;
  log(`marker of ${id} moved ${Math.round(m.to.x - m.from.x)},${Math.round(m.to.y - m.from.y)} px ${took} ms after the send`);
  return { took, from: m.from };
}

// zoomOf infers the map's zoom level from what the user sees: a marker that
// moved dLng degrees east moved dx pixels, and a Web Mercator map at zoom z
// is 256 * 2^z pixels for 360 degrees.
function zoomOf(dx, dLng) {
  return Math.log2((Math.abs(dx) * 360) / (256 * Math.abs(dLng)));
}

// ask tells the Go test what it must do and waits for its answer.
const stdinLines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function ask(what) {
  console.log(`NEED ${what}`);
  const { value, done } = await stdinLines.next();
  if (done || value.trim() !== 'OK') throw new Error(`NEED ${what}: ${done ? 'stdin closed' : value}`);
  log(`${what}: done`);
}

// run runs a scenario with a browser and exits 1 on failure, after a
// screenshot of the failing page.
function run(scenario) {
  (async () => {
    const b = await launch();
    try {
      await scenario(b);
      assert.deepEqual(b.problems, [], 'the page had problems');
      log('PASS');
    } catch (e) {
      if (b.problems.length) console.error('page problems:', b.problems);
      await screenshot(b.page, 'failure').catch(() => {});
      throw e;
    } finally {
      await b.context.close().catch(() => {});
    }
  })().then(
    () => process.exit(0),
    (e) => {
      console.error(e && e.stack ? e.stack : e);
      process.exit(1);
    },
  );
}

module.exports = {
  assert, cfg, log, launch, login, waitLive, screenshot, waitFor, api, ingest, locationFrame, logFrame,
  fleetOnMap, markerBox, focusDevice, watchMarker, moveAndMeasure, zoomOf, ask, run,
};
