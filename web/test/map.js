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
  const zoom = await page.evaluate(() => window.devtrack && window.devtrack.map && window.devtrack.map.getZoom && window.devtrack.map.getZoom());
  if (zoom != null) assert.ok(zoom >= 16, `zoom ${zoom} after clicking the device, want >= 16`);
  const start = await page.evaluate((id) => window.devtrack.markerLatLng(id), id);
  const lat = start[0] + 0.0008, lng = start[1] + 0.0008; // about 90 m: tens of pixels at zoom 16
  const took = await h.moveAndMeasure(page, id, lat, lng);
  await h.screenshot(page, 'moved');
  assert.ok(took <= 1000, `marker moved ${took} ms after the send, want within 1 s`);
  const now = await page.evaluate((id) => window.devtrack.markerLatLng(id), id);
  assert.ok(Math.abs(now[0] - lat) < 1e-6 && Math.abs(now[1] - lng) < 1e-6, `marker at ${now}, sent ${lat},${lng}`);
});
