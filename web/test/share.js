// A share link (POST /api/v1/devices/{id}/shares) opened in a fresh
// browser profile (no session, no token) shows the one device live: its
// marker moves when the device sends a location, other devices' locations
// never reach the page, and the page can reach no device or API with what
// it holds. After revocation, and separately after a 2 s expiry, the page
// says that the link expired and takes no more updates; reopening the URL
// says so too.
// Scenario keys: opToken, opName, opPassword (operator of the device's
// group), device (shared), other (another device of the group, also located).
'use strict';
const h = require('./helpers');
const { assert, cfg } = h;

async function createShare(ttl) {
  const resp = await fetch(`${cfg.base}/api/v1/devices/${encodeURIComponent(cfg.device)}/shares`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${cfg.opToken}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ ttl_s: ttl }),
  });
  const body = await resp.text();
  assert.equal(resp.status, 201, `create share: ${body}`);
  const s = JSON.parse(body);
  assert.ok(s.url.startsWith(`${cfg.base}/s/`), `share url ${s.url}`);
  return s;
}

async function revoke(id) {
  const resp = await fetch(`${cfg.base}/api/v1/shares/${encodeURIComponent(id)}`, {
    method: 'DELETE', headers: { Authorization: `Bearer ${cfg.opToken}` },
  });
  assert.equal(resp.status, 204, `revoke share: ${resp.status}`);
}

// shown is what the page shows of the device: the marker's screen centre
// and the position it reports.
async function shown(page) {
  return page.evaluate(() => {
    const m = document.querySelector('#share-map .share-marker');
    const pos = document.querySelector('#share-position');
    const r = m && m.getBoundingClientRect();
    return {
      marker: r ? { x: r.left + r.width / 2, y: r.top + r.height / 2 } : null,
      lat: pos.dataset.lat ? Number(pos.dataset.lat) : null,
      lng: pos.dataset.lng ? Number(pos.dataset.lng) : null,
    };
  });
}

async function waitPosition(page, lat, lng, what) {
  return h.waitFor(what, async () => {
    const s = await shown(page);
    return s.marker && Math.abs(s.lat - lat) < 1e-9 && Math.abs(s.lng - lng) < 1e-9 && s;
  }, { timeout: 5000 });
}

// waitEnded waits until the page says that the link ended.
async function waitEnded(page, timeout) {
  await page.locator('#share-status[data-state=ended]').waitFor({ timeout });
  const msg = await page.locator('#share-ended').textContent();
  assert.match(msg, /expired|revoked/i, 'ended notice');
}

// noMoreUpdates sends a location and checks that the page keeps the last one.
async function noMoreUpdates(page, last, lat, lng) {
  await h.ingest(cfg.device, h.locationFrame(lat, lng));
  await new Promise((r) => setTimeout(r, 1500));
  const s = await shown(page);
  assert.equal(s.lat, last.lat, 'position changed after the link ended');
  assert.equal(s.lng, last.lng, 'position changed after the link ended');
}

h.run(async ({ context, page }) => {
  assert.equal((await context.cookies()).length, 0, 'fresh profile has cookies');
  const share = await createShare(600);
  const secret = new URL(share.url).pathname.slice('/s/'.length);
  await page.goto(share.url);
  await page.locator('#share-status[data-state=live]').waitFor({ timeout: 10000 });
  h.log('share page live');
  assert.equal((await context.cookies()).length, 0, 'the share page set a cookie');
  const csp = await page.evaluate(() => window.__cspViolations);
  assert.deepEqual(csp, [], 'CSP violations');

  // The device moves: the marker appears, then moves on screen.
  let lat = 31.2304, lng = 121.4737;
  await h.ingest(cfg.device, h.locationFrame(lat, lng));
  const first = await waitPosition(page, lat, lng, 'first position on the share page');
  lat += 0.002; lng += 0.002;
  await h.ingest(cfg.device, h.locationFrame(lat, lng));
  const moved = await waitPosition(page, lat, lng, 'second position on the share page');
  assert.ok(Math.hypot(moved.marker.x - first.marker.x, moved.marker.y - first.marker.y) > 5,
    `marker did not move on screen: ${JSON.stringify(first.marker)} -> ${JSON.stringify(moved.marker)}`);
  h.log(`marker moved ${JSON.stringify(first.marker)} -> ${JSON.stringify(moved.marker)}`);
  await h.screenshot(page, 'share-live');
  await h.screenshot(page, 'readme-share');

  // Another device's location never shows: only one marker, the shared one.
  await h.ingest(cfg.other, h.locationFrame(lat + 0.001, lng - 0.001));
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(await page.locator('#share-map .share-marker').count(), 1, 'markers on the share page');
  const still = await shown(page);
  assert.equal(still.lat, lat, 'another device moved the shared marker');
  assert.ok(!(await page.locator('body').innerText()).includes(cfg.other), `${cfg.other} appears on the page`);

  // From the page, with or without the secret, no API answers.
  const r = await page.evaluate(async ({ device, other, secret }) => {
    const get = async (p, headers) => (await fetch(p, { headers })).status;
    const bearer = { Authorization: `Bearer ${secret}` };
    const tok = encodeURIComponent(secret);
    const live = await new Promise((resolve) => {
      const ws = new WebSocket(`ws://${location.host}/ws/live?token=${tok}`);
      ws.onopen = () => { ws.close(); resolve('open'); };
      ws.onerror = () => resolve('refused');
    });
    const otherShare = await new Promise((resolve) => {
      const ws = new WebSocket(`ws://${location.host}/ws/share?s=${tok}x`);
      ws.onopen = () => { ws.close(); resolve('open'); };
      ws.onerror = () => resolve('refused');
    });
    return {
      devices: await get('/api/v1/devices'),
      devicesBearer: await get('/api/v1/devices', bearer),
      devicesQuery: await get(`/api/v1/devices?token=${tok}`),
      self: await get(`/api/v1/devices/${device}`, bearer),
      other: await get(`/api/v1/devices/${other}`, bearer),
      otherLocations: await get(`/api/v1/devices/${other}/locations?token=${tok}`),
      shares: await get(`/api/v1/devices/${device}/shares`, bearer),
      logs: await get('/api/v1/logs', bearer),
      me: await get('/api/v1/me', bearer),
      queue: await get('/api/v1/queue', bearer),
      live,
      otherShare,
    };
  }, { device: cfg.device, other: cfg.other, secret });
  h.log('from the share page:', JSON.stringify(r));
  for (const [k, v] of Object.entries(r)) {
    if (k === 'live' || k === 'otherShare') assert.equal(v, 'refused', `${k} with the share secret`);
    else assert.ok(v === 401 || v === 403, `${k}: ${v}, want 401 or 403`);
  }

  // Revoked: the page says so within a few seconds and takes no more updates.
  await revoke(share.id);
  await waitEnded(page, 5000);
  h.log('revoked share: page ended');
  await noMoreUpdates(page, still, lat + 0.003, lng);
  await h.screenshot(page, 'share-revoked');
  await page.reload();
  await waitEnded(page, 10000);

  // Expired: a 2 s link, in a page of its own, ends by itself.
  const short = await createShare(2);
  const p2 = await context.newPage();
  p2.on('pageerror', (e) => { throw e; });
  await p2.goto(short.url);
  await p2.locator('#share-status[data-state=live]').waitFor({ timeout: 5000 });
  lat += 0.004;
  await h.ingest(cfg.device, h.locationFrame(lat, lng));
  const before = await waitPosition(p2, lat, lng, 'position on the 2 s share page');
  await waitEnded(p2, 6000);
  h.log('expired share: page ended');
  await noMoreUpdates(p2, before, lat + 0.005, lng);
  await p2.reload();
  await waitEnded(p2, 10000);
  await p2.close();

  // From the UI: the operator creates a link on the device page, the link
  // shows the device live, and Revoke on the same card ends it. Only active
  // links are listed (the two above have ended).
  const ui = await context.newPage();
  await h.login(ui, cfg.opName, cfg.opPassword);
  await ui.goto(`${cfg.base}/#/device/${encodeURIComponent(cfg.device)}`);
  await ui.locator('#share-card').waitFor({ timeout: 10000 });
  await ui.locator('#share-empty').waitFor({ timeout: 5000 });
  await ui.selectOption('#share-ttl', '3600');
  await ui.click('#share-create');
  const url = await h.waitFor('share link in the card', async () => (await ui.inputValue('#share-url')) || null, { timeout: 5000 });
  assert.ok(url.startsWith(`${cfg.base}/s/`), `share url from the UI: ${url}`);
  await ui.locator('#share-list .share-item').first().waitFor({ timeout: 5000 });
  assert.equal(await ui.locator('#share-list .share-item').count(), 1, 'active links listed');
  const listed = await ui.locator('#share-list .share-item').first().innerText();
  assert.match(listed, new RegExp(`by ${cfg.opName}`), `listed link: ${listed}`);
  const p3 = await context.newPage();
  await p3.goto(url);
  await p3.locator('#share-status[data-state=live]').waitFor({ timeout: 5000 });
  lat += 0.006;
  await h.ingest(cfg.device, h.locationFrame(lat, lng));
  await waitPosition(p3, lat, lng, 'position on the page of the link made in the UI');
  await h.screenshot(ui, 'share-card');
  await ui.locator('#share-list .share-item button', { hasText: 'Revoke' }).click();
  await ui.locator('#share-empty').waitFor({ timeout: 5000 });
  await waitEnded(p3, 5000);
  h.log('link made and revoked in the UI: page ended');
  await p3.close();
  await ui.close();
});
