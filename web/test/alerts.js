// Geofences and alerts in the UI: an admin draws a polygon around a test
// device with leaflet-geoman's toolbar (real mouse clicks on the map),
// names it, adds an enter and an exit rule and a webhook to the Go test's
// receiver (whose signing secret the page shows once). The device then
// drives into the polygon and out of it: the alerts page shows exactly one
// enter and one exit live, each with its alert; the exit, which happens
// while the admin is on the map page, shows in the header's badge. The Go
// test checks the webhook deliveries (NEED deliveries SECRET) and kills a
// worker between the enter and the exit (NEED kill-worker).
// Last, on a second gateway with GCJ-02 tiles, an operator of gb draws a
// geofence around a device in Shanghai, stored in WGS-84.
// Scenario keys: device (a device of group ga, located at start [lat, lng]
// and nowhere else), webhook (the receiver's URL), crsBase (the GCJ-02
// gateway), crsStart (where gb's one device is), users.opb (gb's operator).
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

h.run(async ({ page, acceptConfirm }) => {
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
  // A speed rule of the group, listed as such, then deleted again (after a
  // confirm()).
  await page.locator('#rule-kind').selectOption('speed');
  assert.ok(await page.locator('#rule-geofence-field').isHidden(), 'the geofence field shows for a speed rule');
  await page.locator('#rule-group').selectOption('ga');
  await page.locator('#rule-speed').fill('95');
  await page.locator('#rule-name').fill('Too fast');
  await page.locator('#rule-add').click();
  const speedRow = page.locator('#rule-body tr.rule-row[data-kind="speed"]');
  await speedRow.waitFor({ timeout: 5000 });
  assert.match(await speedRow.textContent(), /Too fast.*faster than 95 km\/h.*ga/);
  const confirmed = acceptConfirm(/Delete the rule .Too fast./);
  await speedRow.locator('button', { hasText: 'Delete' }).click();
  await confirmed;
  await speedRow.waitFor({ state: 'detached', timeout: 5000 });
  const { items: rules } = await h.api('/api/v1/alert-rules');
  assert.deepEqual(rules.map((r) => r.kind).sort(), ['geofence_enter', 'geofence_exit'], 'the rules stored');

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
  const outside = [lat0 - 0.005, lng0]; // 550 m south: still on the map, for the screenshot
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

  // On a gateway whose tiles are GCJ-02 (unreachable: the basemap shows),
  // an operator of gb sees none of ga's geofences and draws one around the
  // place where the tiles show their device in Shanghai; it is stored in
  // WGS-84: the middle of the shape is the device's WGS-84 position, not a
  // point off by the GCJ-02 offset.
  await crsPhase(page);
  // Nothing the last page or geoman (drawing, editing, removing) did broke
  // the UI's CSP.
  assert.deepEqual(await page.evaluate(() => window.__cspViolations), [], 'CSP violations');
});

async function crsPhase(page) {
  const [lat, lng] = cfg.crsStart;
  const { wgs84ToGcj02 } = await import('../static/js/crs.js');
  const [glat, glng] = wgs84ToGcj02(lat, lng);
  const offset = metres(lat, lng, glat, glng);
  assert.ok(offset > 300, `the GCJ-02 offset at the device is only ${offset} m`);
  await h.ask('locate-courier');
  await page.context().clearCookies();
  await page.goto(`${cfg.crsBase}/#/alerts`);
  const form = page.locator('form:visible').filter({ has: page.locator('input[type=password]') }).first();
  await form.locator('input[type=text]').first().fill('opb');
  await form.locator('input[type=password]').fill(cfg.users.opb);
  await form.locator('button[type=submit]').click();
  await page.locator('#whoami').filter({ hasText: 'opb' }).waitFor({ timeout: 15000 });
  await page.locator('#page-alerts').waitFor({ state: 'visible' });
  await page.locator(`${mapSel} .leaflet-pm-toolbar .leaflet-pm-icon-polygon`).waitFor({ timeout: 10000 });
  await h.waitFor('the map to show the device', async () => page.evaluate(() => {
    const scale = document.querySelector('#geofence-map .leaflet-control-scale-line');
    return scale && /\d+ m$/.test(scale.textContent.trim());
  }));
  await page.locator('#geofence-empty').waitFor({ state: 'visible' }); // ga's is not theirs
  assert.equal(await page.locator('#geofence-list li').count(), 0, "an operator of gb sees ga's geofence");
  // Where the GCJ-02 tiles show the device's place: its GCJ-02 coordinate
  // on the grid of the tiles the page asked for (they fail, but keep their
  // place), and where its WGS-84 coordinate would be if drawn unconverted.
  const [place, raw] = await h.waitFor('the tiles under the device', () =>
    tileGrid(page, 'http://127.0.0.1:1/', [[glat, glng], [lat, lng]]).then((g) => g && g[0] && g[1] && g));
  const far = Math.hypot(raw.x - place.x, raw.y - place.y);
  h.log(`GCJ-02 tiles show the device at ${place.x.toFixed(1)},${place.y.toFixed(1)} (tile ${place.tile}), ${far.toFixed(0)} px from its unconverted point`);
  assert.ok(far > 20, `the unconverted point is only ${far} px away`);
  await page.locator(`${mapSel} .leaflet-pm-toolbar .leaflet-pm-icon-polygon`).click();
  // Around that place, symmetric, below the bar of actions.
  const pts = [[-110, -50], [110, -50], [110, 50], [-110, 50]].map(([dx, dy]) => [place.x + dx, place.y + dy]);
  for (const [i, [x, y]] of pts.entries()) {
    await page.mouse.click(x, y);
    await h.waitFor(`vertex ${i + 1} placed`, async () => (await vertices(page)) >= i + 1);
  }
  await page.mouse.click(pts[0][0], pts[0][1]);
  await page.locator('#geofence-form').waitFor({ state: 'visible', timeout: 5000 });
  await page.locator('#geofence-name').fill('Pudong gate');
  assert.deepEqual(await page.locator('#geofence-group option').allTextContents(), ['gb'], 'the groups an operator of gb may use');
  await page.locator('#geofence-save').click();
  await page.locator('#geofence-list li.geofence-item', { hasText: 'Pudong gate' }).waitFor({ timeout: 5000 });
  const { items } = await h.api('/api/v1/geofences');
  const gf = items.find((g) => g.name === 'Pudong gate');
  assert.ok(gf && gf.group === 'gb' && gf.ring.length === 4, `stored: ${JSON.stringify(items)}`);
  const mlng = gf.ring.reduce((a, p) => a + p[0], 0) / 4;
  const mlat = gf.ring.reduce((a, p) => a + p[1], 0) / 4;
  const off = metres(lat, lng, mlat, mlng);
  h.log(`the square drawn around it is stored ${off.toFixed(1)} m from the device's WGS-84 position (GCJ-02 offset there: ${offset.toFixed(0)} m)`);
  assert.ok(off < 30, `the square drawn around the device's place on the tiles is centred ${off} m from its WGS-84 position`);

  // Edit mode: drag the north-east vertex 60 px east; the change is saved.
  const edit = page.locator(`${mapSel} .leaflet-pm-toolbar .leaflet-pm-icon-edit`);
  await edit.click();
  const ne = pts[1];
  await h.waitFor('the vertex handles of edit mode', async () => page.evaluate(([x, y]) => {
    const el = document.elementFromPoint(x, y);
    return el && el.classList.contains('marker-icon') && !el.classList.contains('marker-icon-middle');
  }, ne));
  await page.mouse.move(ne[0], ne[1]);
  await page.mouse.down();
  for (let i = 1; i <= 6; i++) await page.mouse.move(ne[0] + i * 10, ne[1]);
  await page.mouse.up();
  const moved = await h.waitFor('the edited square stored', async () => {
    const g = (await h.api(`/api/v1/geofences/${gf.id}`));
    return g.ring[1][0] > gf.ring[1][0] + 1e-4 && g;
  });
  assert.deepEqual(moved.ring[0], gf.ring[0], 'another vertex moved');
  assert.ok(Math.abs(moved.ring[1][1] - gf.ring[1][1]) < 2e-5, `the vertex moved north or south: ${moved.ring[1]} from ${gf.ring[1]}`);
  h.log(`vertex moved east by ${metres(gf.ring[1][1], gf.ring[1][0], moved.ring[1][1], moved.ring[1][0]).toFixed(0)} m, saved`);
  await edit.click(); // edit mode off

  // Removal mode: a click on the geofence deletes it.
  await page.locator(`${mapSel} .leaflet-pm-toolbar .leaflet-pm-icon-delete`).click();
  await page.mouse.click(place.x, place.y);
  await page.locator('#geofence-empty').waitFor({ state: 'visible', timeout: 5000 });
  await h.waitFor('the geofence deleted', async () => {
    const resp = await fetch(`${cfg.base}/api/v1/geofences/${gf.id}`, { headers: { Authorization: `Bearer ${cfg.adminToken}` } });
    return resp.status === 404;
  });
  h.log('removed with the removal tool: deleted');
}

// tileGrid is, for the geofence map's tiles, where each [lat, lng] falls on
// screen: its Web Mercator pixel at the tiles' zoom placed by the box of
// the tile image holding it, read from the tiles' z/x/y URLs (as in
// maps.js), so it measures the tile grid, not the map's projection.
async function tileGrid(page, prefix, points) {
  return page.evaluate(({ prefix, points }) => {
    const tiles = [...document.querySelectorAll('#geofence-map img.leaflet-tile')].map((img) => {
      const m = img.src.startsWith(prefix) && /(\d+)\/(-?\d+)\/(-?\d+)\.png$/.exec(img.src.slice(prefix.length));
      if (!m) return null;
      const r = img.getBoundingClientRect();
      return { z: +m[1], x: +m[2], y: +m[3], left: r.left, top: r.top, width: r.width };
    }).filter(Boolean);
    if (!tiles.length) return null;
    const z = Math.max(...tiles.map((t) => t.z));
    return points.map(([lat, lng]) => {
      const p = window.L.CRS.EPSG3857.latLngToPoint(window.L.latLng(lat, lng), z);
      const tx = Math.floor(p.x / 256);
      const ty = Math.floor(p.y / 256);
      const t = tiles.find((t) => t.z === z && t.x === tx && t.y === ty);
      if (!t || !t.width) return null;
      const scale = t.width / 256;
      return { x: t.left + (p.x - tx * 256) * scale, y: t.top + (p.y - ty * 256) * scale, tile: `${z}/${tx}/${ty}` };
    });
  }, { prefix, points });
}

// metres is the haversine distance between two WGS-84 points.
function metres(lat1, lng1, lat2, lng2) {
  const r = (d) => (d * Math.PI) / 180;
  const a = Math.sin(r(lat2 - lat1) / 2) ** 2 + Math.cos(r(lat1)) * Math.cos(r(lat2)) * Math.sin(r(lng2 - lng1) / 2) ** 2;
  return 2 * 6371008.8 * Math.asin(Math.sqrt(a));
}
