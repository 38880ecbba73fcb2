// `devtrack demo`: the printed credentials log in, and the map shows the
// whole simulated fleet.
'use strict';
const h = require('./helpers');
const { assert, cfg } = h;

h.run(async ({ page }) => {
  await h.login(page, 'admin', cfg.users.admin);
  const n = cfg.devices;
  const shown = await h.waitFor(`map showing the ${n} demo devices`, async () => {
    const m = await h.fleetOnMap(page);
    return m.total === n && m;
  }, { timeout: 30000 });
  h.log(`map: ${shown.ids.length} markers + clusters ${JSON.stringify(shown.clusters)} = ${shown.total}`);
  assert.equal(await page.locator('#device-list li.device-item').count(), n, 'device list');
  await h.waitFor('device counts', async () => (await page.textContent('#device-counts')).includes(`${n} devices`));
  await h.screenshot(page, 'demo-fleet');
});
