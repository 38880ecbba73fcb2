// Geofences and alerts in the UI: an admin draws a polygon around a test
// device with leaflet-geoman's toolbar (real mouse clicks on the map),
// names it, adds an enter and an exit rule and a webhook to the Go test's
// receiver (whose signing secret the page shows once). The device then
// drives into the polygon and out of it: the alerts page shows exactly one
// enter and one exit live, each with its alert; the exit, which happens
// while the admin is on the map page, shows in the header's badge. The Go
// test checks the webhook deliveries (NEED deliveries SECRET) and kills a
// worker between the enter and the exit (NEED kill-worker).
// Scenario keys: device (a device of group ga, located at start [lat, lng]
// and nowhere else), webhook (the receiver's URL).
'use strict';
const h = require('./helpers');
const { assert, cfg } = h;

const mapSel = '#geofence-map';

// vertices counts the vertex markers of the polygon being drawn.
async function vertices(page) {
  return page.locator(`${mapSel} .marker-icon:not(.cursor-marker)`).count();
}

// liveEvents counts the feed's live geofence events of the device by type,
// and its live alerts by kind.
async function liveFeed(page) {
  return page.evaluate((device) => {
    const out = { enter: 0, exit: 0, geofence_enter: 0, geofence_exit: 0, texts: [] };
    for (const li of document.querySelectorAll('#feed-list li.feed-item[data-live="true"]')) {
      if (li.dataset.device !== device) continue;
      if (li.dataset.type === 'geofence') out[li.dataset.event]++;
      else out[li.dataset.kind]++;
      out.texts.push(li.textContent);
    }
    return out;
  }, cfg.device);
}

// drive sends locations at (lat, lng), one a second, until the archive has
// the device's geofence event of type (the worker reads new geofences and
// rules every --alerts-poll; a location it judged before then crossed
// nothing, and the next one does).
async function drive(lat, lng, type) {
  let last = 0;
  return h.waitFor(`the ${type} event of ${cfg.device} in the archive`, async () => {
    if (Date.now() - last >= 1000) {
      last = Date.now();
      await h.ingest(cfg.device, h.locationFrame(lat, lng));
    }
    const evs = await h.api(`/api/v1/geofence-events?device=${encodeURIComponent(cfg.device)}`);
    return evs.items.find((e) => e.type === type);
  }, { timeout: 20000, interval: 200 });
}

h.run(async ({ page }) => {
  const [lat0, lng0] = cfg.start;
  await h.login(page, 'admin', cfg.users.admin);
  await page.locator('#nav-alerts').click();
  await page.locator('#page-alerts').waitFor({ state: 'visible' });
  await page.locator(`${mapSel} .leaflet-pm-toolbar .leaflet-pm-icon-polygon`).waitFor({ timeout: 10000 });
  // The map fits the one located device (no geofences yet): it is at the
  // map's centre.
  const box = await page.locator(mapSel).boundingBox();
  const cx = box.x + box.width / 2;
  const cy = box.y + box.height / 2;
  await h.waitFor('the map to show the device', async () => page.evaluate(() => {
    const scale = document.querySelector('#geofence-map .leaflet-control-scale-line');
    return scale && /\d+ m$/.test(scale.textContent.trim()); // zoomed in to streets, not the world
  }));

  // Draw a polygon around the centre with real clicks, closing it on its
  // first vertex. The points keep clear of the bar of actions (Finish,
  // Remove last vertex, Cancel) that opens right of the polygon button.
  await page.locator(`${mapSel} .leaflet-pm-toolbar .leaflet-pm-icon-polygon`).click();
  const pts = [[-150, -45], [160, -70], [140, 120], [-130, 110]].map(([dx, dy]) => [cx + dx, cy + dy]);
  for (const [i, [x, y]] of pts.entries()) {
    await page.mouse.click(x, y);
    await h.waitFor(`vertex ${i + 1} placed`, async () => (await vertices(page)) >= i + 1);
  }
  await page.mouse.click(pts[0][0], pts[0][1]);
  await page.locator('#geofence-form').waitFor({ state: 'visible', timeout: 5000 });
  const name = 'North depot';
  await page.locator('#geofence-name').fill(name);
  await page.locator('#geofence-group').selectOption('ga');
  await page.locator('#geofence-save').click();
  await page.locator('#geofence-list li.geofence-item', { hasText: name }).waitFor({ timeout: 5000 });
  assert.ok(await page.locator('#geofence-form').isHidden(), 'the form stays after saving');

  // What is stored is what was drawn: a polygon of 4 points in WGS-84
  // around the device, a few hundred metres across.
  const { items: fences } = await h.api('/api/v1/geofences');
  assert.equal(fences.length, 1, `geofences: ${JSON.stringify(fences)}`);
  const gf = fences[0];
  assert.equal(gf.kind, 'polygon');
  assert.equal(gf.group, 'ga');
  assert.equal(gf.name, name);
  assert.equal(gf.ring.length, 4, `ring ${JSON.stringify(gf.ring)}`);
  const lngs = gf.ring.map((p) => p[0]);
  const lats = gf.ring.map((p) => p[1]);
  assert.ok(Math.min(...lngs) < lng0 && lng0 < Math.max(...lngs), `device lng ${lng0} not inside ${lngs}`);
  assert.ok(Math.min(...lats) < lat0 && lat0 < Math.max(...lats), `device lat ${lat0} not inside ${lats}`);
  assert.ok(Math.max(...lngs) - Math.min(...lngs) < 0.05, `polygon ${JSON.stringify(gf.ring)} is not street-sized`);
  // The left clicks are west, the upper ones north.
  assert.ok(gf.ring[0][0] < gf.ring[1][0] && gf.ring[0][1] > gf.ring[3][1], `ring order ${JSON.stringify(gf.ring)}`);
  h.log(`polygon ${gf.id} stored: ${JSON.stringify(gf.ring)}`);

  // Enter and exit rules for it.
  for (const [kind, rname] of [['geofence_enter', 'Arrived'], ['geofence_exit', 'Left']]) {
    await page.locator('#rule-kind').selectOption(kind);
    await page.locator('#rule-geofence').selectOption(gf.id);
    await page.locator('#rule-name').fill(rname);
    await page.locator('#rule-add').click();
    await page.locator(`#rule-body tr.rule-row[data-kind="${kind}"]`).waitFor({ timeout: 5000 });
  }
  assert.match(await page.locator('#rule-body').textContent(), new RegExp(`enters ${name}[\\s\\S]*leaves ${name}|leaves ${name}[\\s\\S]*enters ${name}`));

  // A webhook for every group, its secret made by the server, shown once.
  await page.locator('#webhook-url').fill(cfg.webhook);
  await page.locator('#webhook-add').click();
  await page.locator('#webhook-secret').waitFor({ state: 'visible', timeout: 5000 });
  const secret = (await page.locator('#webhook-secret-value').textContent()).trim();
  assert.match(secret, /^dtwh_/, 'the secret shown');
  await page.locator('#webhook-body tr.webhook-row', { hasText: cfg.webhook }).waitFor({ timeout: 5000 });
  const { items: hooks } = await h.api('/api/v1/webhooks');
  assert.ok(!JSON.stringify(hooks).includes(secret), 'the webhook list shows the secret');

  // Outside, then into the polygon: one enter, live, with its alert.
  const outside = [lat0 + 0.03, lng0 + 0.03];
  await h.ingest(cfg.device, h.locationFrame(...outside));
  await drive(lat0, lng0, 'enter');
  await h.waitFor('the enter and its alert live on the page', async () => {
    const f = await liveFeed(page);
    return f.enter >= 1 && f.geofence_enter >= 1 && f;
  }, { timeout: 10000 });
  await h.ask('kill-worker');

  // On the map page, the exit's alert shows in the header.
  await page.locator('#nav-map').click();
  await page.locator('#page-map').waitFor({ state: 'visible' });
  assert.ok(await page.locator('#alert-badge').isHidden(), 'the badge shows before any alert on the map page');
  await drive(...outside, 'exit');
  await page.locator('#alert-badge').waitFor({ state: 'visible', timeout: 10000 });
  assert.equal((await page.locator('#alert-badge-count').textContent()).trim(), '1 new alert');
  h.log(`badge: ${await page.locator('#alert-badge').textContent()}`);
  await page.locator('#alert-badge').click();
  await page.locator('#page-alerts').waitFor({ state: 'visible' });
  assert.ok(await page.locator('#alert-badge').isHidden(), 'the badge stays on the alerts page');
  const f = await h.waitFor('the exit and its alert live on the page', async () => {
    const v = await liveFeed(page);
    return v.exit >= 1 && v.geofence_exit >= 1 && v;
  }, { timeout: 10000 });

  // Webhooks: one delivery of each alert (the Go test waits for them).
  await h.ask(`deliveries ${secret}`);
  // Nothing came twice meanwhile.
  const after = await liveFeed(page);
  h.log(`live feed of ${cfg.device}: ${JSON.stringify(after)}`);
  for (const k of ['enter', 'exit', 'geofence_enter', 'geofence_exit']) {
    assert.equal(after[k], 1, `${k} shown ${after[k]} times live: ${after.texts.join(' | ')}`);
  }
  assert.ok(f.texts.some((t) => t.includes(name)), `no live item names ${name}: ${f.texts.join(' | ')}`);
  const evs = await h.api(`/api/v1/geofence-events?device=${encodeURIComponent(cfg.device)}`);
  assert.deepEqual(evs.items.map((e) => e.type), ['exit', 'enter'], 'archived events, newest first');

  // After a reload, the archived events and alerts are listed.
  await page.reload();
  await h.waitLive(page);
  await page.locator('#page-alerts').waitFor({ state: 'visible' });
  await h.waitFor('the archived feed', async () => (await page.locator('#feed-list li.feed-item').count()) >= 4);
  await page.locator('#geofence-map path.leaflet-interactive').first().waitFor({ timeout: 5000 });
  await h.screenshot(page, 'readme-alerts');
});
