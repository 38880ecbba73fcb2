// The embeddable client on a page of another origin (examples/viewer,
// served by the Go test on another port): it shows live positions, the
// device names fetched over CORS and the forbidden device, and after the
// gateway is killed and restarted it reconnects and resubscribes by itself:
// the test never touches the page after loading it. Then the usage page's
// live example on the gateway's own origin.
'use strict';
const h = require('./helpers');
const { assert, cfg } = h;

h.run(async ({ page }) => {
  const id = 'emb-1';
  const gatewayOrigin = new URL(cfg.base).origin;
  assert.notEqual(new URL(cfg.pageURL).origin, gatewayOrigin, 'the page must come from another origin');
  await page.goto(cfg.pageURL);
  assert.notEqual(await page.evaluate(() => location.origin), gatewayOrigin);
  await page.waitForSelector('#state[data-state=open]', { timeout: 15000 });
  const row = `tr[data-device="${id}"]`;
  // The snapshot's position, the name from the query API (CORS), and the
  // device of another group refused.
  await page.waitForSelector(`${row}[data-lat="31.2"]`, { timeout: 10000 });
  await page.waitForSelector(`${row}[data-name="Embedded One"]`, { timeout: 10000 });
  await page.waitForFunction(() => /forbidden: emb-b/.test(document.querySelector('#problem').textContent), null, { timeout: 10000 });
  h.log('snapshot, names over CORS and the forbidden device shown');

  const waitAt = async (lat, what) => {
    const sent = Date.now();
    await page.waitForSelector(`${row}[data-lat="${lat}"]`, { timeout: 10000 });
    h.log(`${what}: position shown ${Date.now() - sent} ms after the send`);
  };
  await h.ingest(id, h.locationFrame(31.2101, 121.4101));
  await waitAt(31.2101, 'before the restart');
  await h.screenshot(page, 'live');

  await h.ask('gateway-restart');
  await page.waitForFunction(() => Number(document.querySelector('#state').dataset.opens) >= 2, null, { timeout: 20000 });
  await h.ask('live-subscribed');
  await h.ingest(id, h.locationFrame(31.2202, 121.4202));
  await waitAt(31.2202, 'after the restart');
  assert.equal(await page.textContent(`${row} .lng`), '121.420200');
  await h.screenshot(page, 'resubscribed');

  // The usage page's live example, on the gateway's own origin, under its
  // strict CSP.
  await page.goto(cfg.base + '/client/');
  await page.fill('#try-token', cfg.opToken);
  await page.fill('#try-devices', id);
  await page.click('#try-connect');
  await page.waitForSelector('#try-state[data-state=open]', { timeout: 10000 });
  await page.waitForFunction((id) => {
    const tr = document.querySelector(`#try-positions tr[data-device="${id}"]`);
    return tr && tr.children[2].textContent === '31.220200';
  }, id, { timeout: 10000 });
  assert.deepEqual(await page.evaluate(() => window.__cspViolations), [], 'CSP violations on the usage page');
  await h.screenshot(page, 'usage-page', { fullPage: true });
});
