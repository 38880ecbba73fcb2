// The map shows the fleet, and a location sent by a device moves its marker
// on screen within a second.
'use strict';
const h = require('./helpers');
const { assert, cfg } = h;

h.run(async ({ page }) => {
  await h.login(page, 'admin', cfg.users.admin);
  const fleet = [...cfg.groupA, ...cfg.groupB];

  // Every located device is on the map, standalone or in a cluster.
  const { items } = await page.evaluate(() => fetch('/api/v1/devices').then((r) => r.json()));
  const located = items.filter((d) => d.location).map((d) => d.id).sort();
  assert.deepEqual(located, [...fleet].sort(), 'every device of the fleet has a position');
  const shown = await h.waitFor(`map showing ${fleet.length} devices`, async () => {
    const m = await h.fleetOnMap(page);
    return m.total === fleet.length && m;
  });
  h.log(`map: ${shown.ids.length} markers + clusters ${JSON.stringify(shown.clusters)} = ${shown.total}`);
  assert.equal(await page.locator('#device-list li.device-item').count(), fleet.length, 'device list');
  await h.screenshot(page, 'fleet');

  // Zoomed in on the mover, a new position moves its marker within 1 s.
  const id = 'mover';
  await h.focusDevice(page, id);
  const popup = page.locator('.leaflet-popup');
  assert.equal(await popup.locator('.popup-name').textContent(), cfg.names[id]);
  assert.match(await popup.locator('.popup-group').textContent(), /\bga\b/);
  assert.equal(await popup.locator('a.popup-link').getAttribute('href'), `#/device/${id}`);
  const start = await page.evaluate((id) => window.devtrack.markerLatLng(id), id);
  const dLat = 0.0003, dLng = 0.0008; // about 80 m east, 30 m north: tens of pixels at zoom 16
  const lat = start[0] + dLat, lng = start[1] + dLng;
  const { took, from } = await h.moveAndMeasure(page, id, lat, lng);
  assert.ok(took <= 1000, `marker moved ${took} ms after the send, want within 1 s`);
  // It moved the right way and far enough to tell the map was zoomed in
  // to 16 or more (where it cannot be clustered).
  const to = await h.waitFor('marker settled', async () => {
    const a = await h.markerBox(page, id);
    await new Promise((r) => setTimeout(r, 100));
    const b = await h.markerBox(page, id);
    return a && b && a.x === b.x && a.y === b.y && b;
  });
  assert.ok(to.x > from.x && to.y < from.y, `marker went from ${JSON.stringify(from)} to ${JSON.stringify(to)}, want east and north`);
  const zoom = h.zoomOf(to.x - from.x, dLng);
  h.log(`zoom after clicking the device: ${zoom.toFixed(2)}`);
  assert.ok(zoom >= 15.9, `zoom ${zoom.toFixed(2)} after clicking the device, want >= 16`);
  const now = await page.evaluate((id) => window.devtrack.markerLatLng(id), id);
  assert.ok(Math.abs(now[0] - lat) < 1e-9 && Math.abs(now[1] - lng) < 1e-9, `marker at ${now}, sent ${lat},${lng}`);
  // The open popup follows the new position (the ingest frames say 4.2 m/s).
  await h.waitFor('popup speed', async () => /4[.,]2|15[.,]1/.test(await popup.locator('.popup-speed').textContent()));
  await h.screenshot(page, 'moved');
});
