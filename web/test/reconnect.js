// The page reconnects after the gateway is killed and restarted on the same
// port, resubscribes, and live locations move markers again.
'use strict';
const h = require('./helpers');
const { assert, cfg } = h;

h.run(async ({ page }) => {
  const id = 'mover';
  await h.login(page, 'admin', cfg.users.admin);
  await h.focusDevice(page, id);
  const [lat, lng] = await page.evaluate((id) => window.devtrack.markerLatLng(id), id);
  const { took: first } = await h.moveAndMeasure(page, id, lat + 0.0005, lng + 0.0005);
  assert.ok(first <= 1000, `before the restart: moved after ${first} ms`);

  // Record every state the live indicator goes through.
  await page.evaluate(() => {
    const el = document.querySelector('#live-status');
    window.__states = [el.dataset.state];
    new MutationObserver(() => window.__states.push(el.dataset.state))
      .observe(el, { attributes: true, attributeFilter: ['data-state'] });
  });
  await h.ask('gateway-restart');
  await page.waitForFunction(() => window.__states.includes('reconnecting'), null, { timeout: 15000 });
  await page.waitForFunction(() => window.__states.lastIndexOf('live') > window.__states.indexOf('reconnecting'), null, { timeout: 30000 });
  const states = await page.evaluate(() => window.__states);
  h.log(`live status went ${states.join(' -> ')}`);
  await h.screenshot(page, 'reconnected');

  // The new socket is subscribed: a location sent now moves the marker.
  const { took } = await h.moveAndMeasure(page, id, lat - 0.0005, lng + 0.001);
  assert.ok(took <= 1000, `after the restart: moved after ${took} ms`);
  const at = await page.evaluate((id) => window.devtrack.markerLatLng(id), id);
  assert.ok(Math.abs(at[0] - (lat - 0.0005)) < 1e-6 && Math.abs(at[1] - (lng + 0.001)) < 1e-6, `marker at ${at}`);
});
